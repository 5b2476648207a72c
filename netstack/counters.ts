// The one counter type of the data path and its layers (vpn/, netstack/,
// mitm/): counts by reason, read as a plain record for status.json and
// /metrics.

/** Counters keyed by reason; the one counting idiom of the stack. */
export class Counters {
  readonly values: Record<string, number> = Object.create(null) as Record<string, number>;

  inc(reason: string, by = 1): void {
    this.values[reason] = (this.values[reason] ?? 0) + by;
  }
}
