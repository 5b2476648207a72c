// Port ranges of the rules, cut into elementary intervals: the boundaries of
// all ranges split 0..65535 into pieces inside which every port is matched
// by the same rules. A table maps each port to its piece in O(1); the rules
// of a piece are found by scanning the ranges sorted by start.

export class PortIndex {
  /** Flat (lo, hi, rule) triples, sorted by lo. */
  private readonly ranges: Int32Array;
  /** port -> interval id. */
  private readonly intervalOf = new Uint16Array(65536);
  /** interval id -> its first port. */
  private readonly starts: number[];

  constructor(entries: { lo: number; hi: number; rule: number }[]) {
    const sorted = [...entries].sort((a, b) => a.lo - b.lo || a.rule - b.rule);
    this.ranges = new Int32Array(sorted.length * 3);
    sorted.forEach((e, i) => this.ranges.set([e.lo, e.hi, e.rule], i * 3));
    const cuts = new Set<number>([0]);
    for (const e of sorted) {
      cuts.add(e.lo);
      if (e.hi < 65535) cuts.add(e.hi + 1);
    }
    this.starts = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i < this.starts.length; i++) {
      const end = i + 1 < this.starts.length ? this.starts[i + 1] : 65536;
      this.intervalOf.fill(i, this.starts[i], end);
    }
  }

  interval(port: number): number {
    return this.intervalOf[port & 0xffff];
  }

  /** Calls fn with every rule whose ranges contain the interval. */
  forEachRule(interval: number, fn: (rule: number) => void): void {
    const p = this.starts[interval];
    const r = this.ranges;
    for (let i = 0; i < r.length && r[i] <= p; i += 3) {
      if (p <= r[i + 1]) fn(r[i + 2]);
    }
  }
}
