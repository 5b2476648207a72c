// Packet buffers for the emit path, carved from large uninitialised slabs:
// one allocation per slab instead of one zeroed ArrayBuffer per packet (each
// `Buffer.alloc` of a segment is a fresh backing store, zero-filled, then
// written over).
//
// Until its owner calls recycle(), a slab is never written twice: a packet
// stays valid for as long as anyone holds it (a test, say), and the GC frees
// a slab once none of its packets is held. An owner that knows every packet
// it took has been read and let go (the concentrator, once the stack's output
// is sealed into the send queue) calls recycle(): the slabs are handed out
// again, so a bulk transfer writes its segments into the same few warm slabs
// instead of a fresh 64 KB of memory for every ~40 segments (new pages to
// fault in, and external memory that drives the GC). Whoever keeps a packet
// past that point copies it (the WireGuard peer's staging queue does).
// Memory is not zeroed: an emitter that takes from an arena must write
// every byte of what it takes (TcpRepr.emit does: header, options, payload).

/** Big enough for ~40 full-sized segments, small enough that a slab kept alive by one packet costs little. */
export const ARENA_SLAB_BYTES = 64 * 1024;
/** Larger requests get a buffer of their own rather than a slab's tail. */
const OWN_BUFFER_ABOVE = ARENA_SLAB_BYTES / 4;
/** Slabs kept for reuse across recycle() calls (1 MiB); a longer burst allocates more and lets the GC take them. */
export const ARENA_KEPT_SLABS = 16;

export class PacketArena {
  /** Every slab this arena holds, in the order they are carved; those after `current` wait for reuse. */
  private readonly slabs: Buffer[] = [];
  /** Index in `slabs` of the slab being carved (-1: none since the last recycle). */
  private current = -1;
  /** Bytes carved from slabs[current]. */
  private used = 0;

  /** `len` uninitialised bytes. */
  take(len: number): Buffer {
    if (len > OWN_BUFFER_ABOVE) return Buffer.allocUnsafeSlow(len);
    if (this.current < 0 || len > ARENA_SLAB_BYTES - this.used) {
      this.current++;
      if (this.current === this.slabs.length) this.slabs.push(Buffer.allocUnsafeSlow(ARENA_SLAB_BYTES));
      this.used = 0;
    }
    const b = this.slabs[this.current].subarray(this.used, this.used + len);
    // 8-byte aligned starts keep every packet's words aligned in the slab.
    this.used += (len + 7) & ~7;
    return b;
  }

  /**
   * Every packet taken so far has been read and let go by everyone: the next
   * take() writes over them, starting again at the first kept slab.
   */
  recycle(): void {
    if (this.current < 0) return;
    if (this.slabs.length > ARENA_KEPT_SLABS) this.slabs.length = ARENA_KEPT_SLABS;
    this.current = -1;
  }
}
