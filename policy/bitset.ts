// Rule sets as bitsets: bit i stands for rule i. A decision ANDs one bitset
// per dimension (protocol, user, port, destination, host) and takes the
// lowest set bit, which is exactly "first match wins" without visiting the
// rules one by one. 10,000 rules are 313 words per set.

export type Bitset = Uint32Array;

export function wordsFor(bits: number): number {
  return Math.max(1, (bits + 31) >>> 5);
}

export function setBit(b: Bitset, i: number): void {
  b[i >>> 5] |= 1 << (i & 31);
}

export function clearBit(b: Bitset, i: number): void {
  b[i >>> 5] &= ~(1 << (i & 31));
}

export function hasBit(b: Bitset, i: number): boolean {
  return (b[i >>> 5] & (1 << (i & 31))) !== 0;
}

/** A set of the given rule indices. */
export function bitsetOf(words: number, members: Iterable<number>): Bitset {
  const b = new Uint32Array(words);
  for (const i of members) setBit(b, i);
  return b;
}

/**
 * A dimension's rules for one query, as `base | extra`: base is a shared,
 * precomputed set; extra holds the few rules found one by one (a short list
 * on a prefix or domain), set here and cleared after the decision, so no set is
 * allocated or copied per decision.
 */
export class Extra {
  readonly bits: Bitset;
  private readonly touched: number[] = [];

  constructor(words: number) {
    this.bits = new Uint32Array(words);
  }

  add(i: number): void {
    const w = i >>> 5;
    if (this.bits[w] === 0) this.touched.push(w);
    this.bits[w] |= 1 << (i & 31);
  }

  addAll(rules: readonly number[]): void {
    for (let k = 0; k < rules.length; k++) this.add(rules[k]);
  }

  addSlice(rules: Int32Array, from: number, to: number): void {
    for (let k = from; k < to; k++) this.add(rules[k]);
  }

  clear(): void {
    for (let k = 0; k < this.touched.length; k++) this.bits[this.touched[k]] = 0;
    this.touched.length = 0;
  }
}

/**
 * Index of the lowest rule in a & u & (dstBase | dstExtra) & (hostBase | hostExtra)
 * & (categoryBase | categoryExtra), or -1: the first rule every field lets through.
 */
export function firstCommon(a: Bitset, u: Bitset, dB: Bitset, dX: Bitset, hB: Bitset, hX: Bitset, cB: Bitset, cX: Bitset): number {
  const n = a.length;
  for (let w = 0; w < n; w++) {
    const x = a[w] & u[w] & (dB[w] | dX[w]) & (hB[w] | hX[w]) & (cB[w] | cX[w]);
    // x & -x isolates the lowest set bit; clz32 turns it into its index.
    if (x !== 0) return (w << 5) + 31 - Math.clz32(x & -x);
  }
  return -1;
}

/** a | b into out (out may be a). */
export function orInto(out: Bitset, a: Bitset, b: Bitset): void {
  for (let w = 0; w < out.length; w++) out[w] = a[w] | b[w];
}

/**
 * Bitsets computed on demand per key (a user, a port interval)
 * and kept up to a byte budget. When full it starts over: a scan over many
 * keys then costs one recomputation each (a few hundred ns), never memory.
 */
export class BitsetCache<K> {
  private readonly map = new Map<K, Bitset>();
  private readonly maxEntries: number;

  constructor(words: number, budgetBytes: number) {
    this.maxEntries = Math.max(64, Math.floor(budgetBytes / (words * 4)));
  }

  get(key: K, compute: (key: K) => Bitset): Bitset {
    let b = this.map.get(key);
    if (b === undefined) {
      if (this.map.size >= this.maxEntries) this.map.clear();
      b = compute(key);
      this.map.set(key, b);
    }
    return b;
  }

  get size(): number {
    return this.map.size;
  }
}
