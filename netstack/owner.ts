/** Who a flow belongs to: the tunnel peer (id) and its user, for limits and records. */
export interface FlowOwner {
  readonly id: string;
  readonly user: string;
}

/** Counters keyed by reason; the one counting idiom of the stack. */
export class Counters {
  readonly values: Record<string, number> = Object.create(null) as Record<string, number>;

  inc(reason: string, by = 1): void {
    this.values[reason] = (this.values[reason] ?? 0) + by;
  }
}
