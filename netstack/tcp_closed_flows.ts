// The grace period of TCP flows that closed cleanly (see CLOSED_FLOW_GRACE_MAX_MS in tcp_flows.ts).

/**
 * 4-tuples of flows that closed cleanly, each for `graceMs`: segments of the
 * old connection are dropped silently, a new SYN ends the grace at once.
 */
export class ClosedFlows {
  private readonly until = new Map<string, number>();
  // One grace for all, so insertion order is expiry order: a FIFO of (key, deadline).
  private readonly keys: string[] = [];
  private readonly deadlines: number[] = [];
  private head = 0;

  constructor(private readonly graceMs: number) {}

  get size(): number {
    return this.until.size;
  }

  add(key: string, now: number): void {
    const t = now + this.graceMs;
    this.until.set(key, t);
    this.keys.push(key);
    this.deadlines.push(t);
  }

  /** True when the segment belongs to a connection closed within the grace. */
  absorbs(key: string, isSyn: boolean, now: number): boolean {
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (isSyn || until <= now) {
      this.until.delete(key);
      return false;
    }
    return true;
  }

  expire(now: number): void {
    const { keys, deadlines, until } = this;
    while (this.head < keys.length && deadlines[this.head] <= now) {
      const key = keys[this.head];
      // The same 4-tuple closed again later has its own, later, entry.
      if (until.get(key) === deadlines[this.head]) until.delete(key);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > keys.length) {
      keys.splice(0, this.head);
      deadlines.splice(0, this.head);
      this.head = 0;
    }
  }
}
