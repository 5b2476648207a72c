// Port ranges of the rules. Their boundaries cut 0..65535 into elementary
// intervals inside which every port is matched by the same rules; a table
// maps a port to its interval in O(1). The rules of an interval come from a
// segment tree over the intervals: each range is stored on the O(log n) tree
// nodes that tile it, and an interval's rules are those on its leaf-to-root
// path. Lists long enough to cost more one by one than as a bitset are kept
// as bitsets, so computing an interval's set (once, then cached) is bounded
// by the tree's depth, not by the number of ranges.
import { bitsetOf, type Bitset } from './bitset';

export class PortIndex {
  /** port -> interval id. */
  private readonly intervalOf = new Uint16Array(65536);
  /** Segment tree nodes 1..2*size-1; leaves at size + interval. */
  private readonly size: number;
  private readonly lists: number[][];
  private readonly dense = new Map<number, Bitset>();

  constructor(entries: { lo: number; hi: number; rule: number }[], words: number) {
    const cuts = new Set<number>([0]);
    for (const e of entries) {
      cuts.add(e.lo);
      if (e.hi < 65535) cuts.add(e.hi + 1);
    }
    const starts = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i < starts.length; i++) this.intervalOf.fill(i, starts[i], i + 1 < starts.length ? starts[i + 1] : 65536);
    this.size = 1;
    while (this.size < starts.length) this.size *= 2;
    this.lists = Array.from({ length: 2 * this.size }, () => []);
    for (const e of entries) {
      let l = this.intervalOf[e.lo] + this.size;
      let r = this.intervalOf[e.hi] + this.size + 1;
      for (; l < r; l >>= 1, r >>= 1) {
        if (l & 1) this.lists[l++].push(e.rule);
        if (r & 1) this.lists[--r].push(e.rule);
      }
    }
    const denseAt = Math.max(24, words >>> 2);
    this.lists.forEach((l, node) => {
      if (l.length >= denseAt) this.dense.set(node, bitsetOf(words, l));
    });
  }

  interval(port: number): number {
    return this.intervalOf[port & 0xffff];
  }

  /** Adds the rules whose ranges contain the interval to `b`. */
  addRules(interval: number, b: Bitset): void {
    for (let node = interval + this.size; node >= 1; node >>= 1) {
      const d = this.dense.get(node);
      if (d !== undefined) {
        for (let w = 0; w < b.length; w++) b[w] |= d[w];
        continue;
      }
      const l = this.lists[node];
      for (let k = 0; k < l.length; k++) b[l[k] >>> 5] |= 1 << (l[k] & 31);
    }
  }
}
