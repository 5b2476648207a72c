// Destination prefixes of one address family, for "which rules' `dst`
// contains this address". Prefixes are either nested or disjoint, so sorted
// by start (outer first) they form a forest; flattened, they cut the address
// space into ranges, each covered by one deepest prefix. A lookup is a binary
// search over the range starts (one typed array, no pointer chasing); the
// rules are then the deepest prefix's and its ancestors'.
//
// Broad prefixes are where rules pile up (a /8 named by hundreds of rules),
// so some prefixes become anchors that hold their whole ancestry's rules as a
// bitset: a decision starts from the nearest anchor and adds, one by one,
// fewer than HEAVY rules from the prefixes below it.
import type { IpCidr } from '../netstack/wire';
import { bitsetOf, type Bitset, type Extra } from './bitset';

/** Rules accumulated down a chain of prefixes before one becomes an anchor. */
export const HEAVY = 24;

interface Prefix {
  start: bigint;
  len: number;
  rules: number[];
}

export class PrefixIndex {
  private readonly byText = new Map<string, Prefix>();
  /** Per prefix (in sorted order): nearest containing prefix, or -1. */
  private parent = new Int32Array(0);
  /** Per prefix: nearest anchor at or above it, or -1. */
  private anchor = new Int32Array(0);
  private readonly anchorBits = new Map<number, Bitset>();
  /** Per prefix p: its rules are rules[ruleStart[p] .. ruleStart[p + 1]). */
  private ruleStart = new Int32Array(1);
  private rules = new Int32Array(0);
  /** Range starts, `per` uint32 words each (1 for IPv4, 4 for IPv6), ascending. */
  private starts = new Uint32Array(0);
  /** Per range: the deepest prefix covering it, or -1. */
  private rangePrefix = new Int32Array(0);
  private readonly per: number;

  constructor(private readonly bits: 32 | 128) {
    this.per = bits / 32;
  }

  /** Attaches a rule index to a prefix; rules arrive in ascending order. */
  insert(cidr: IpCidr, rule: number): void {
    const net = cidr.network;
    const key = `${net.toString()}/${cidr.prefixLength}`;
    const p = this.byText.get(key);
    if (p === undefined) this.byText.set(key, { start: net.toBigInt(), len: cidr.prefixLength, rules: [rule] });
    else if (p.rules[p.rules.length - 1] !== rule) p.rules.push(rule);
  }

  /** Builds the ranges and the anchors: `base` (the rules without `dst`) plus every rule up the anchor's chain. */
  freeze(words: number, base: Bitset): void {
    const sorted = [...this.byText.values()].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.len - b.len));
    const n = sorted.length;
    this.parent = new Int32Array(n);
    this.anchor = new Int32Array(n);
    this.ruleStart = new Int32Array(n + 1);
    sorted.forEach((p, i) => (this.ruleStart[i + 1] = this.ruleStart[i] + p.rules.length));
    this.rules = Int32Array.from(sorted.flatMap((p) => p.rules));

    const top = 1n << BigInt(this.bits);
    const starts: bigint[] = [];
    const covering: number[] = [];
    const emit = (at: bigint, prefix: number): void => {
      if (starts.length > 0 && starts[starts.length - 1] === at) covering[covering.length - 1] = prefix;
      else if (covering.length === 0 || covering[covering.length - 1] !== prefix) {
        starts.push(at);
        covering.push(prefix);
      }
    };
    const open: { end: bigint; index: number; pending: number }[] = [];
    const closeUntil = (pos: bigint): void => {
      while (open.length > 0 && open[open.length - 1].end <= pos) {
        const done = open.pop() as { end: bigint };
        if (done.end < top) emit(done.end, open.length > 0 ? open[open.length - 1].index : -1);
      }
    };
    emit(0n, -1);
    sorted.forEach((p, i) => {
      closeUntil(p.start);
      const up = open.length > 0 ? open[open.length - 1] : null;
      this.parent[i] = up === null ? -1 : up.index;
      const upAnchor = up === null ? -1 : this.anchor[up.index];
      let pending = (up === null || upAnchor === up.index ? 0 : up.pending) + p.rules.length;
      if (pending >= HEAVY) {
        this.anchor[i] = i;
        pending = 0;
        const b = bitsetOf(words, this.rulesOnPath(i));
        for (let w = 0; w < words; w++) b[w] |= base[w];
        this.anchorBits.set(i, b);
      } else {
        this.anchor[i] = upAnchor;
      }
      open.push({ end: p.start + (1n << BigInt(this.bits - p.len)), index: i, pending });
      emit(p.start, i);
    });
    closeUntil(top);

    this.starts = new Uint32Array(starts.length * this.per);
    starts.forEach((v, i) => {
      for (let k = this.per - 1; k >= 0; k--, v >>= 32n) this.starts[i * this.per + k] = Number(v & 0xffffffffn);
    });
    this.rangePrefix = Int32Array.from(covering);
  }

  /** The deepest prefix containing the address at buf[offset..], or -1: the last range starting at or before it. */
  lookup(buf: Uint8Array, offset: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = this.rangePrefix.length - 1;
    if (this.per === 1) {
      const a = ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (s[mid] <= a) lo = mid;
        else hi = mid - 1;
      }
      return this.rangePrefix[lo];
    }
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compare128(s, mid * 4, buf, offset) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return this.rangePrefix[lo];
  }

  /** The rules whose `dst` contains the address found at `prefix`: the returned base, plus what is added to `extra`. */
  select(prefix: number, noDst: Bitset, extra: Extra): Bitset {
    if (prefix < 0) return noDst;
    const anchor = this.anchor[prefix];
    for (let p = prefix; p !== anchor; p = this.parent[p]) extra.addSlice(this.rules, this.ruleStart[p], this.ruleStart[p + 1]);
    return anchor < 0 ? noDst : (this.anchorBits.get(anchor) as Bitset);
  }

  /** Every rule on the prefix and the prefixes containing it. */
  rulesOnPath(prefix: number): number[] {
    const out: number[] = [];
    for (let p = prefix; p >= 0; p = this.parent[p]) out.push(...this.rules.subarray(this.ruleStart[p], this.ruleStart[p + 1]));
    return out;
  }

  /** Distinct prefixes, and how many hold their chain's rules as a bitset. */
  get stats(): { prefixes: number; anchors: number } {
    return { prefixes: this.parent.length, anchors: this.anchorBits.size };
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
