// Send queue: bytes written by the application from SND.UNA onwards, both
// unacknowledged and not yet sent (RFC 9293 §3.8.6.2). Bounded so that a slow
// client pushes back on the upstream socket instead of growing memory.

export const DEFAULT_SEND_BUFFER_BYTES = 4 * 1024 * 1024;

export class SendBuffer {
  private chunks: Buffer[] = [];
  private head = 0;
  /** bytes already acknowledged from chunks[head] */
  private headOffset = 0;
  private total = 0;
  // Cached position for sequential slicing: chunk index and its stream offset.
  private hintIndex = 0;
  private hintStart = 0;

  constructor(readonly capacity: number = DEFAULT_SEND_BUFFER_BYTES) {}

  /** Bytes held (unacknowledged + unsent). */
  get length(): number {
    return this.total;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.total);
  }

  /**
   * Queues up to `free` bytes of data and returns how many were taken. The
   * buffer is kept by reference, not copied: the caller must not modify it.
   */
  push(data: Buffer): number {
    const n = Math.min(data.length, this.free);
    if (n === 0) return 0;
    this.chunks.push(n === data.length ? data : data.subarray(0, n));
    this.total += n;
    return n;
  }

  /** Drops `n` bytes from the front (they were acknowledged). */
  consume(n: number): void {
    n = Math.min(n, this.total);
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[this.head];
      const avail = c.length - this.headOffset;
      if (n < avail) {
        this.headOffset += n;
        n = 0;
      } else {
        n -= avail;
        this.head++;
        this.headOffset = 0;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    this.hintIndex = this.head;
    this.hintStart = 0;
  }

  /**
   * Bytes [offset, offset+len) counted from the front. Returns a view when the
   * range lies in one chunk, otherwise a copy.
   */
  slice(offset: number, len: number): Buffer {
    len = Math.min(len, this.total - offset);
    if (len <= 0) return Buffer.alloc(0);
    let idx = this.head;
    let start = 0; // stream offset (from front) of chunk idx's first live byte
    if (this.hintIndex >= this.head && this.hintStart <= offset) {
      idx = this.hintIndex;
      start = this.hintStart;
    }
    for (;;) {
      const live = this.chunks[idx].length - (idx === this.head ? this.headOffset : 0);
      if (offset < start + live) break;
      start += live;
      idx++;
    }
    this.hintIndex = idx;
    this.hintStart = start;
    const base = idx === this.head ? this.headOffset : 0;
    const first = this.chunks[idx];
    const within = base + (offset - start);
    if (within + len <= first.length) return first.subarray(within, within + len);
    const out = Buffer.allocUnsafe(len);
    let copied = first.copy(out, 0, within);
    for (let j = idx + 1; copied < len; j++) {
      copied += this.chunks[j].copy(out, copied, 0, Math.min(this.chunks[j].length, len - copied));
    }
    return out;
  }
}
