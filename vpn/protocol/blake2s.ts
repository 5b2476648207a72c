// BLAKE2s (RFC 7693): keyed, output length 1..32 bytes. Neither node:crypto
// (unkeyed BLAKE2s-256 only) nor libsodium (BLAKE2b only) offers the keyed,
// 16-byte form that WireGuard's MAC1/MAC2 need, hence this implementation.

const BLOCK_LEN = 64;
const MAX_OUT_LEN = 32;
const MAX_KEY_LEN = 32;

// RFC 7693 §2.6: the SHA-256 initial values.
const IV = Uint32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);

// RFC 7693 §2.7: message word schedule, 10 rounds × 16 indices.
const SIGMA = Uint8Array.of(
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
  7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
  9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
  2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
  12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
  13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
  6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
  10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
);

// Scratch space shared by all instances: compress() is synchronous and never
// re-entered, so one working vector and one message schedule suffice.
const v = new Uint32Array(16);
const m = new Uint32Array(16);

function g(a: number, b: number, c: number, d: number, x: number, y: number): void {
  v[a] = (v[a] + v[b] + x) | 0;
  let t = v[d] ^ v[a];
  v[d] = (t >>> 16) | (t << 16);
  v[c] = (v[c] + v[d]) | 0;
  t = v[b] ^ v[c];
  v[b] = (t >>> 12) | (t << 20);
  v[a] = (v[a] + v[b] + y) | 0;
  t = v[d] ^ v[a];
  v[d] = (t >>> 8) | (t << 24);
  v[c] = (v[c] + v[d]) | 0;
  t = v[b] ^ v[c];
  v[b] = (t >>> 7) | (t << 25);
}

/** Incremental BLAKE2s: `new Blake2s(outLen, key).update(a).update(b).digest()`. */
export class Blake2s {
  private readonly h = new Uint32Array(8);
  private readonly buf = new Uint8Array(BLOCK_LEN);
  private bufLen = 0;
  private t0 = 0; // byte counter, low and high words (RFC 7693 §3.2 "t")
  private t1 = 0;

  constructor(private readonly outLen: number = MAX_OUT_LEN, key?: Uint8Array) {
    const keyLen = key ? key.length : 0;
    if (outLen < 1 || outLen > MAX_OUT_LEN) throw new RangeError(`BLAKE2s output length ${outLen} outside 1..32`);
    if (keyLen > MAX_KEY_LEN) throw new RangeError(`BLAKE2s key length ${keyLen} exceeds 32`);
    this.h.set(IV);
    // Parameter block: digest length, key length, fanout = depth = 1.
    this.h[0] ^= 0x01010000 ^ (keyLen << 8) ^ outLen;
    if (key && keyLen > 0) {
      this.buf.set(key);
      this.bufLen = BLOCK_LEN; // key block is zero-padded to a full block
    }
  }

  update(data: Uint8Array): this {
    let off = 0;
    const n = data.length;
    while (off < n) {
      // The last block must be compressed with the final flag, so a full
      // buffer is only flushed once more input is known to follow.
      if (this.bufLen === BLOCK_LEN) {
        this.increment(BLOCK_LEN);
        this.compress(this.buf, 0, false);
        this.bufLen = 0;
      }
      const take = Math.min(BLOCK_LEN - this.bufLen, n - off);
      this.buf.set(data.subarray(off, off + take), this.bufLen);
      this.bufLen += take;
      off += take;
    }
    return this;
  }

  /** Finishes the hash into `out` (fresh buffer when omitted). The instance is spent afterwards. */
  digest(out: Buffer = Buffer.allocUnsafe(this.outLen)): Buffer {
    this.increment(this.bufLen);
    this.buf.fill(0, this.bufLen);
    this.compress(this.buf, 0, true);
    const h = this.h;
    for (let i = 0; i < this.outLen; i++) out[i] = h[i >>> 2] >>> (8 * (i & 3));
    this.h.fill(0);
    this.buf.fill(0);
    return out;
  }

  private increment(n: number): void {
    this.t0 += n;
    if (this.t0 > 0xffffffff) {
      this.t0 -= 0x100000000;
      this.t1 += 1;
    }
  }

  private compress(block: Uint8Array, off: number, last: boolean): void {
    const h = this.h;
    for (let i = 0; i < 16; i++) {
      const p = off + 4 * i;
      m[i] = block[p] | (block[p + 1] << 8) | (block[p + 2] << 16) | (block[p + 3] << 24);
    }
    for (let i = 0; i < 8; i++) v[i] = h[i];
    v[8] = IV[0]; v[9] = IV[1]; v[10] = IV[2]; v[11] = IV[3];
    v[12] = IV[4] ^ this.t0;
    v[13] = IV[5] ^ this.t1;
    v[14] = last ? ~IV[6] : IV[6];
    v[15] = IV[7];
    for (let r = 0; r < 10; r++) {
      const s = r * 16;
      g(0, 4, 8, 12, m[SIGMA[s]], m[SIGMA[s + 1]]);
      g(1, 5, 9, 13, m[SIGMA[s + 2]], m[SIGMA[s + 3]]);
      g(2, 6, 10, 14, m[SIGMA[s + 4]], m[SIGMA[s + 5]]);
      g(3, 7, 11, 15, m[SIGMA[s + 6]], m[SIGMA[s + 7]]);
      g(0, 5, 10, 15, m[SIGMA[s + 8]], m[SIGMA[s + 9]]);
      g(1, 6, 11, 12, m[SIGMA[s + 10]], m[SIGMA[s + 11]]);
      g(2, 7, 8, 13, m[SIGMA[s + 12]], m[SIGMA[s + 13]]);
      g(3, 4, 9, 14, m[SIGMA[s + 14]], m[SIGMA[s + 15]]);
    }
    for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
  }
}

/** One-shot BLAKE2s of `data` (optionally keyed) with `outLen` bytes of output. */
export function blake2s(data: Uint8Array, outLen = MAX_OUT_LEN, key?: Uint8Array): Buffer {
  return new Blake2s(outLen, key).update(data).digest();
}
