// Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
// Comparisons are valid while the two numbers are less than 2^31 apart, which
// TCP guarantees because windows are at most 2^30 (RFC 7323 §2.3).

/** A uint32 TCP sequence number; only the functions below do arithmetic on it. */
export type Seq = number & { readonly __brand: 'Seq' };

export function asSeq(n: number): Seq {
  return (n >>> 0) as Seq;
}

export function seqAdd(a: Seq, n: number): Seq {
  return ((a + n) >>> 0) as Seq;
}

/** Signed distance a - b, in (-2^31, 2^31]. */
export function seqSub(a: Seq, b: Seq): number {
  return (a - b) | 0;
}

export function seqLt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLeq(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGeq(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) >= 0;
}

export function seqMax(a: Seq, b: Seq): Seq {
  return seqGt(a, b) ? a : b;
}

export function seqMin(a: Seq, b: Seq): Seq {
  return seqLt(a, b) ? a : b;
}

/** lo <= x < hi, in sequence space. */
export function seqInRange(x: Seq, lo: Seq, hi: Seq): boolean {
  return seqLeq(lo, x) && seqLt(x, hi);
}
