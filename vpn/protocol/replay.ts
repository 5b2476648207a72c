// Sliding-window replay filter for transport counters (whitepaper §5.4.6,
// RFC 6479 bitmap ring). Counters are 64-bit and handled as two 32-bit
// halves (hi, lo) so that values up to REJECT_AFTER_MESSAGES stay exact
// without allocating bigints per packet.
import { REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO } from './constants';

const BLOCK_BITS_LOG = 5; // 32-bit blocks (Uint32Array)
const BLOCK_BIT_MASK = (1 << BLOCK_BITS_LOG) - 1;
const RING_BLOCKS = 128; // 4096-bit ring
const RING_MASK = RING_BLOCKS - 1;
/** One block is always being recycled, so the usable window is one block short of the ring (RFC 6479 §2). */
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) << BLOCK_BITS_LOG; // 4064 counters
/** Bytes of the ring, for owners that place it in an allocation of their own (keypair.ts). */
export const REPLAY_RING_BYTES = RING_BLOCKS * 4;
const TWO_POW_27 = 2 ** (32 - BLOCK_BITS_LOG);
const TWO_POW_32 = 2 ** 32;

/** true when (hi, lo) ≥ REJECT_AFTER_MESSAGES. */
export function counterExhausted(hi: number, lo: number): boolean {
  return hi > REJECT_AFTER_MESSAGES_HI || (hi === REJECT_AFTER_MESSAGES_HI && lo >= REJECT_AFTER_MESSAGES_LO);
}

export class ReplayFilter {
  private lastHi = 0;
  private lastLo = 0;

  constructor(private readonly ring = new Uint32Array(RING_BLOCKS)) {
    if (ring.length !== RING_BLOCKS) throw new Error(`replay ring must be ${RING_BLOCKS} blocks, got ${ring.length}`);
  }

  reset(): void {
    this.lastHi = 0;
    this.lastLo = 0;
    this.ring.fill(0);
  }

  /**
   * Records counter (hi, lo) and returns true the first time it is seen;
   * false for a duplicate, a counter older than the window, or one at or
   * beyond REJECT_AFTER_MESSAGES. Call only after the packet authenticated,
   * or a forger could burn counters.
   */
  validate(hi: number, lo: number): boolean {
    if (counterExhausted(hi, lo)) return false;
    const hiDiff = hi - this.lastHi;
    if (hiDiff > 0 || (hiDiff === 0 && lo > this.lastLo)) {
      // Slide forward, clearing the blocks that the window moves over.
      const lastBlock = this.lastLo >>> BLOCK_BITS_LOG;
      let blocks = hiDiff * TWO_POW_27 + ((lo >>> BLOCK_BITS_LOG) - lastBlock);
      if (blocks > RING_BLOCKS) blocks = RING_BLOCKS;
      for (let i = 1; i <= blocks; i++) this.ring[(lastBlock + i) & RING_MASK] = 0;
      this.lastHi = hi;
      this.lastLo = lo;
    } else {
      // Exact while small; when huge the rounding cannot bring it under the window.
      const behind = (this.lastHi - hi) * TWO_POW_32 + (this.lastLo - lo);
      if (behind > REPLAY_WINDOW_SIZE) return false;
    }
    const block = (lo >>> BLOCK_BITS_LOG) & RING_MASK;
    const bit = 1 << (lo & BLOCK_BIT_MASK);
    const old = this.ring[block];
    if ((old & bit) !== 0) return false;
    this.ring[block] = old | bit;
    return true;
  }
}
