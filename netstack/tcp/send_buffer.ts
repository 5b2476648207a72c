// Send queue: bytes written by the application from SND.UNA onwards, both
// unacknowledged and not yet sent (RFC 9293 §3.8.6.2). Bounded so that a slow
// client pushes back on the upstream socket instead of growing memory.
//
// Written bytes are copied into fixed-size chunks from a pool shared by the
// flows of a table, and each chunk goes back to the pool once all its bytes
// are acknowledged. Keeping the upstream's own buffers until the client's ACK
// instead made every read from the origin fresh memory, held for a round trip:
// in a 200 MB download that was as many bytes of new memory as were moved, and
// the GC and page faults it brought cost more than the copy (see README,
// "Where the download's time goes").

import { PacketArena } from '../wire/arena';

export const DEFAULT_SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** Size of the chunks written data is copied into. */
export const SEND_CHUNK_BYTES = 16 * 1024;
/** Free chunks a pool keeps (4 MiB); chunks freed beyond that are left to the GC. */
export const SEND_POOL_KEPT_CHUNKS = 256;

const NO_DATA = Buffer.alloc(0);
/** Emptied slots at the front of a send buffer's chunk list that are dropped together. */
const COMPACT_AFTER = 32;

/**
 * Free send-buffer chunks, last freed first out: the chunk taken next is the
 * one most likely still in the CPU's caches. A segment that spans two chunks
 * is copied into `seams`: a flow table passes the arena it builds its packets
 * in, which it recycles only once every segment is built.
 */
export class SendChunkPool {
  private readonly freeChunks: Buffer[] = [];

  constructor(readonly seams: PacketArena = new PacketArena()) {}

  take(): Buffer {
    return this.freeChunks.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK_BYTES);
  }

  give(chunk: Buffer): void {
    if (this.freeChunks.length < SEND_POOL_KEPT_CHUNKS) this.freeChunks.push(chunk);
  }

  /** Free chunks held for reuse. */
  get kept(): number {
    return this.freeChunks.length;
  }
}

export class SendBuffer {
  /**
   * chunks[head..] are the chunks from the pool holding the queued bytes.
   * Every one but the last is full, so a byte's chunk is found by division.
   * A chunk given back leaves its slot at once (the slot is left empty), so
   * the pool alone decides whether it outlives the flow; the empty slots are
   * dropped once there are COMPACT_AFTER of them, so an ACK does not move
   * the whole array. None is held while the buffer is empty.
   */
  private chunks: Buffer[] = [];
  private head = 0;
  /** Bytes already acknowledged from chunks[head]. */
  private headOffset = 0;
  /** Bytes written into the last chunk. */
  private tailUsed = 0;
  private total = 0;

  constructor(
    readonly capacity: number = DEFAULT_SEND_BUFFER_BYTES,
    private readonly pool: SendChunkPool = new SendChunkPool(),
  ) {}

  /** Bytes held (unacknowledged + unsent). */
  get length(): number {
    return this.total;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.total);
  }

  /** Memory held, in whole chunks: what buffer budgets charge the flow. */
  get memory(): number {
    return (this.chunks.length - this.head) * SEND_CHUNK_BYTES;
  }

  /** Bytes push() can copy while taking at most `room` bytes of new chunks (capacity aside). */
  fitsIn(room: number): number {
    const tailFree = this.chunks.length > this.head ? SEND_CHUNK_BYTES - this.tailUsed : 0;
    if (!(room >= SEND_CHUNK_BYTES)) return tailFree;
    return tailFree + Math.floor(room / SEND_CHUNK_BYTES) * SEND_CHUNK_BYTES;
  }

  /** Copies up to `free` bytes of data and returns how many were taken. */
  push(data: Buffer): number {
    const n = Math.min(data.length, this.free);
    let copied = 0;
    while (copied < n) {
      if (this.chunks.length === this.head || this.tailUsed === SEND_CHUNK_BYTES) {
        this.chunks.push(this.pool.take());
        this.tailUsed = 0;
      }
      const k = data.copy(this.chunks[this.chunks.length - 1], this.tailUsed, copied, n);
      this.tailUsed += k;
      copied += k;
    }
    this.total += n;
    return n;
  }

  /**
   * Drops `n` bytes from the front (they were acknowledged); chunks left with
   * none go back to the pool. The caller has turned every segment cut from
   * them into a packet before anything takes from the pool again.
   */
  consume(n: number): void {
    n = Math.min(n, this.total);
    if (n <= 0) return;
    this.total -= n;
    if (this.total === 0) {
      for (let i = this.head; i < this.chunks.length; i++) this.pool.give(this.chunks[i]);
      this.chunks.length = 0;
      this.head = 0;
      this.headOffset = 0;
      this.tailUsed = 0;
      return;
    }
    // Bytes remain after these, so every chunk passed here is full.
    let off = this.headOffset + n;
    while (off >= SEND_CHUNK_BYTES) {
      this.pool.give(this.chunks[this.head]);
      // Kept past this call, a reference would hold a chunk the pool let go
      // of (it keeps only so many) while budgets charge only the live ones.
      this.chunks[this.head++] = NO_DATA;
      off -= SEND_CHUNK_BYTES;
    }
    this.headOffset = off;
    if (this.head >= COMPACT_AFTER) {
      this.chunks.copyWithin(0, this.head);
      this.chunks.length -= this.head;
      this.head = 0;
    }
  }

  /**
   * Bytes [offset, offset+len) counted from the front. Returns a view when the
   * range lies in one chunk, otherwise a copy in the pool's seam arena. Either
   * is for building a segment at once: a view is valid until those bytes are
   * acknowledged, a copy until the seam arena is recycled.
   */
  slice(offset: number, len: number): Buffer {
    len = Math.min(len, this.total - offset);
    if (len <= 0) return NO_DATA;
    const at = this.headOffset + offset;
    const idx = this.head + Math.floor(at / SEND_CHUNK_BYTES);
    const within = at % SEND_CHUNK_BYTES;
    if (within + len <= SEND_CHUNK_BYTES) return this.chunks[idx].subarray(within, within + len);
    const out = this.pool.seams.take(len);
    let copied = this.chunks[idx].copy(out, 0, within);
    for (let j = idx + 1; copied < len; j++) {
      copied += this.chunks[j].copy(out, copied, 0, Math.min(SEND_CHUNK_BYTES, len - copied));
    }
    return out;
  }
}
