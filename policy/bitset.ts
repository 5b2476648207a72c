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

/** Index of the lowest bit set in all five sets, or -1. */
export function firstCommon(a: Bitset, b: Bitset, c: Bitset, d: Bitset, e: Bitset): number {
  const n = a.length;
  for (let w = 0; w < n; w++) {
    const x = a[w] & b[w] & c[w] & d[w] & e[w];
    // x & -x isolates the lowest set bit; clz32 turns it into its index.
    if (x !== 0) return (w << 5) + 31 - Math.clz32(x & -x);
  }
  return -1;
}

/**
 * Bitsets computed on demand per key (a user, a port interval, a trie node)
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
