// Two ways of holding bytes that arrive from elsewhere, shared by the stack,
// the WireGuard core, the TLS engine and DNS.

/**
 * A copy in memory of its own. Buffer.from / allocUnsafe hand out slices of a
 * shared 8 KB pool, and a long-lived slice keeps its whole pool alive: keys
 * held per peer that way cost about 2 KB of pool each (measured with 1,000
 * connected peers), and a secret would share memory with unrelated data.
 */
export function ownCopy(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(bytes.length);
  out.set(bytes);
  return out;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * Bytes of a stream in order, kept in the pieces they came in and joined only
 * when asked: a reader that asks once a whole record (a length, a message) is
 * there makes a peer sending a byte per read cost no copy of everything
 * before it per byte. The pieces are kept as given, not copied.
 */
export class Pieces {
  private parts: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.length += b.length;
  }

  /** All the bytes held, as one buffer (joined now if in pieces). */
  joined(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.length)];
    return this.parts.length === 0 ? NO_BYTES : this.parts[0];
  }

  /** Drops the first `n` bytes. */
  skip(n: number): void {
    const rest = this.joined().subarray(n);
    this.parts = rest.length === 0 ? [] : [rest];
    this.length = rest.length;
  }
}
