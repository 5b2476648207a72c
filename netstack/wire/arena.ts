// Packet buffers for the emit path, carved from large uninitialised slabs:
// one allocation per slab instead of one zeroed ArrayBuffer per packet (each
// `Buffer.alloc` of a segment is a fresh backing store, zero-filled, then
// written over). A slab is never written twice: a packet stays valid for as
// long as anyone holds it (the WireGuard device encrypts into its own
// buffer, but a packet staged before a handshake, or kept by a test, lives
// on), and the slab is freed by the GC once none of its packets is held.
// Memory is not zeroed: an emitter that takes from an arena must write
// every byte of what it takes (TcpRepr.emit does: header, options, payload).

/** Big enough for ~40 full-sized segments, small enough that a slab kept alive by one packet costs little. */
export const ARENA_SLAB_BYTES = 64 * 1024;
/** Larger requests get a buffer of their own rather than a slab's tail. */
const OWN_BUFFER_ABOVE = ARENA_SLAB_BYTES / 4;

export class PacketArena {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;

  /** `len` uninitialised bytes. */
  take(len: number): Buffer {
    if (len > OWN_BUFFER_ABOVE) return Buffer.allocUnsafeSlow(len);
    if (len > this.slab.length - this.used) {
      this.slab = Buffer.allocUnsafeSlow(ARENA_SLAB_BYTES);
      this.used = 0;
    }
    const b = this.slab.subarray(this.used, this.used + len);
    // 8-byte aligned starts keep every packet's words aligned in the slab.
    this.used += (len + 7) & ~7;
    return b;
  }
}
