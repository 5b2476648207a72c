// The one counter type of the data path and its layers (vpn/, netstack/,
// mitm/): counts by reason, read as a plain record for status.json and
// /metrics. A layer keeps its Counters private and shows `values`, so a
// reader never changes a count.

/**
 * Counters keyed by reason. K narrows the reasons a layer may count (its
 * record then lists them); `zeroed` are shown as 0 before their first count.
 */
export class Counters<K extends string = string> {
  readonly values: Record<K, number> = Object.create(null) as Record<K, number>;

  constructor(zeroed: readonly K[] = []) {
    for (const k of zeroed) this.values[k] = 0;
  }

  inc(reason: K, by = 1): void {
    this.values[reason] = (this.values[reason] ?? 0) + by;
  }

  /** For a count kept elsewhere (a socket pool's), shown beside the others. */
  set(reason: K, value: number): void {
    this.values[reason] = value;
  }
}
