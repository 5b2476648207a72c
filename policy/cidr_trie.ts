// Destination prefixes as a binary trie per address family, one bit per
// level, nodes in flat arrays. The deepest node carrying rules ("marked") on
// a destination's path gives exactly the rules whose `dst` contains it: that
// node's and its marked ancestors'. Lookups do not walk the trie bit by bit
// (up to 128 dependent loads): the marked prefixes are flattened into sorted
// address ranges, each naming its deepest marked node, and found by binary
// search over one typed array.
//
// Broad prefixes are where many rules pile up (a /8 in hundreds of rules), so
// after the inserts some marked nodes become anchors holding the whole
// path's rules as a bitset: a decision starts from the nearest anchor and
// adds, one by one, fewer than HEAVY rules from the marked nodes below it.
import type { IpCidr } from '../netstack/wire';
import { bitsetOf, type Bitset, type Extra } from './bitset';

/** Rules accumulated along a path before a node becomes an anchor. */
export const HEAVY = 24;

export class CidrTrie {
  private readonly zero: number[] = [0];
  private readonly one: number[] = [0];
  /** 1 where a node carries rules: the walk tests this, not the Map. */
  private readonly isMarked: number[] = [0];
  private readonly marks = new Map<number, number[]>();
  /** Per marked node, after freeze: the nearest marked proper ancestor (or -1). */
  private readonly markedParent = new Map<number, number>();
  /** Per marked node, after freeze: the nearest anchor at or above it (or -1). */
  private readonly anchorOf = new Map<number, number>();
  private readonly anchorBits = new Map<number, Bitset>();
  /** Per marked node: its prefix's first address and length (for the ranges). */
  private readonly prefixes = new Map<number, [start: bigint, len: number]>();
  /** Range starts, `words` uint32 per start (1 for IPv4, 4 for IPv6), ascending; built by freeze. */
  private starts = new Uint32Array(0);
  /** Per range: the deepest marked node covering it, or -1. */
  private rangeNode = new Int32Array(0);

  constructor(private readonly bits: 32 | 128) {}

  /** Attaches a rule index to the prefix's node; rules arrive in ascending order. */
  insert(cidr: IpCidr, rule: number): void {
    const bytes = cidr.network.bytes;
    let node = 0;
    for (let d = 0; d < cidr.prefixLength; d++) {
      const next = ((bytes[d >> 3] >> (7 - (d & 7))) & 1) === 0 ? this.zero : this.one;
      if (next[node] === 0) {
        next[node] = this.zero.length;
        this.zero.push(0);
        this.one.push(0);
        this.isMarked.push(0);
      }
      node = next[node];
    }
    this.isMarked[node] = 1;
    this.prefixes.set(node, [BigInt(`0x${bytes.toString('hex')}`), cidr.prefixLength]);
    const list = this.marks.get(node);
    if (list === undefined) this.marks.set(node, [rule]);
    else if (list[list.length - 1] !== rule) list.push(rule);
  }

  /**
   * Links marked nodes to their marked parents and builds the anchors:
   * `base` (the rules without `dst`) plus every rule on the anchor's path.
   */
  freeze(words: number, base: Bitset): void {
    const walk = (node: number, parent: number, anchor: number, pending: number): void => {
      let below = parent;
      if (this.isMarked[node] === 1) {
        this.markedParent.set(node, parent);
        pending += (this.marks.get(node) as number[]).length;
        if (pending >= HEAVY) {
          anchor = node;
          pending = 0;
          const b = bitsetOf(words, this.rulesOnPath(node));
          for (let w = 0; w < words; w++) b[w] |= base[w];
          this.anchorBits.set(node, b);
        }
        this.anchorOf.set(node, anchor);
        below = node;
      }
      if (this.zero[node] !== 0) walk(this.zero[node], below, anchor, pending);
      if (this.one[node] !== 0) walk(this.one[node], below, anchor, pending);
    };
    walk(0, -1, -1, 0);
    this.buildRanges();
  }

  /**
   * Flattens the nested prefixes into disjoint ranges: sorted by start, outer
   * before inner, a stack of open prefixes says who covers each stretch.
   */
  private buildRanges(): void {
    const top = 1n << BigInt(this.bits);
    const sorted = [...this.prefixes].sort(([, a], [, b]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    const starts: bigint[] = [];
    const nodes: number[] = [];
    const emit = (at: bigint, node: number): void => {
      if (starts.length > 0 && starts[starts.length - 1] === at) {
        nodes[nodes.length - 1] = node;
      } else if (nodes.length === 0 || nodes[nodes.length - 1] !== node) {
        starts.push(at);
        nodes.push(node);
      }
    };
    const open: { end: bigint; node: number }[] = [];
    const closeUntil = (pos: bigint): void => {
      while (open.length > 0 && open[open.length - 1].end <= pos) {
        const done = open.pop() as { end: bigint; node: number };
        if (done.end < top) emit(done.end, open.length > 0 ? open[open.length - 1].node : -1);
      }
    };
    emit(0n, -1);
    for (const [node, [start, len]] of sorted) {
      closeUntil(start);
      open.push({ end: start + (1n << BigInt(this.bits - len)), node });
      emit(start, node);
    }
    closeUntil(top);
    const per = this.bits / 32;
    this.starts = new Uint32Array(starts.length * per);
    starts.forEach((v, i) => {
      for (let k = per - 1; k >= 0; k--, v >>= 32n) this.starts[i * per + k] = Number(v & 0xffffffffn);
    });
    this.rangeNode = Int32Array.from(nodes);
  }

  /**
   * The deepest marked node whose prefix contains the address at
   * buf[offset..], or -1 when none does: the last range starting at or
   * before the address.
   */
  lookup(buf: Uint8Array, offset: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = this.rangeNode.length - 1;
    if (this.bits === 32) {
      const a = ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (s[mid] <= a) lo = mid;
        else hi = mid - 1;
      }
      return this.rangeNode[lo];
    }
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compare128(s, mid * 4, buf, offset) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return this.rangeNode[lo];
  }

  /** The rules matching at a marked node: the returned base, plus what is added to `extra`. */
  select(marked: number, noDst: Bitset, extra: Extra): Bitset {
    if (marked < 0) return noDst;
    const anchor = this.anchorOf.get(marked) as number;
    for (let n = marked; n !== anchor; n = this.markedParent.get(n) as number) extra.addAll(this.marks.get(n) as number[]);
    return anchor < 0 ? noDst : (this.anchorBits.get(anchor) as Bitset);
  }

  /** Every rule on the marked node and its marked ancestors. */
  rulesOnPath(marked: number): number[] {
    const out: number[] = [];
    for (let n = marked; n >= 0; n = this.markedParent.get(n) ?? -1) out.push(...(this.marks.get(n) as number[]));
    return out;
  }
}

/** Sign of (starts[at..at+4] - address at buf[offset..offset+16]), as 128-bit unsigned numbers. */
function compare128(starts: Uint32Array, at: number, buf: Uint8Array, offset: number): number {
  for (let k = 0; k < 4; k++) {
    const o = offset + k * 4;
    const w = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
    if (starts[at + k] !== w) return starts[at + k] < w ? -1 : 1;
  }
  return 0;
}
