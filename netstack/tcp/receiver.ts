// Receive side of one flow: RCV.NXT, the in-order queue the edge drains with
// read(), the out-of-order queue, and the window we advertise (RFC 9293
// §3.8.6.2.2 receiver SWS avoidance; the right edge never moves left).
import { DEFAULT_MAX_PIECES, Reassembly } from './reassembly';
import { Seq, seqAdd, seqGeq, seqLt, seqLeq, seqMax, seqSub } from './seq';
import { MAX_WINDOW_FIELD } from './options';

/** Result bits of Receiver.onData */
export const DATA_NEW = 1; // new in-order bytes reached the queue
export const DATA_OUT_OF_ORDER = 2; // bytes stored beyond a hole
export const DATA_DUPLICATE = 4; // bytes that were already received
export const DATA_FIN = 8; // the client's FIN was reached (RCV.NXT advanced past it)
export const DATA_FILLED_HOLE = 16; // in-order data pulled bytes out of the reassembly queue
export const DATA_REFUSED = 32; // in-order bytes dropped: the owner is over its buffer budget
/** Receive copy slab; small enough to keep an idle flow well under 64 KiB. */
const SLAB_BYTES = 16 * 1024;
const NO_DATA = Buffer.alloc(0);

export class Receiver {
  rcvNxt: Seq;
  /** right edge of the window last advertised: RCV.NXT + RCV.WND at that time */
  rcvAdvRight: Seq;
  readonly ooo: Reassembly;
  /** the client's FIN seen beyond a hole, waiting for the hole to fill */
  private pendingFin: Seq | null = null;
  finReceived = false;
  /** In-order bytes dropped because the owner had no buffer room (the client retransmits them). */
  refusedBytes = 0;
  private queue: Buffer[] = [];
  private queueHead = 0;
  private queued = 0;
  private slab: Buffer | null = null;
  private slabUsed = 0;
  /** Bytes per unit of the window field (2^wscale; a power computed per segment showed in profiles). */
  private readonly windowUnit: number;

  constructor(
    irs: Seq,
    readonly capacity: number,
    readonly wscale: number,
    private readonly mss: number,
    /** largest window we may advertise before scaling (64 KiB without WS) */
    private readonly maxWindow: number,
    /** Bytes the flow's owner may still buffer (buffer budgets); ≤ 0 stops queueing and window opening. */
    private readonly room: () => number = () => Infinity,
  ) {
    this.windowUnit = 2 ** wscale;
    this.rcvNxt = seqAdd(irs, 1);
    this.rcvAdvRight = this.rcvNxt;
    this.ooo = new Reassembly(capacity, DEFAULT_MAX_PIECES, (bytes) => this.room() >= bytes);
  }

  /** In-order bytes waiting for read(). */
  get buffered(): number {
    return this.queued;
  }

  /** RCV.WND as last advertised, from the current RCV.NXT. */
  get window(): number {
    return Math.max(0, seqSub(this.rcvAdvRight, this.rcvNxt));
  }

  /**
   * Accepts the text (and FIN) of a segment that passed the acceptability
   * test: trims what lies before RCV.NXT or beyond the window, queues in-order
   * bytes (copied), stores the rest out of order. Returns DATA_* bits.
   */
  onData(seq: Seq, payload: Buffer, fin: boolean): number {
    let result = 0;
    let start = seq;
    let data = payload;
    const finSeq = seqAdd(seq, payload.length);
    if (seqLt(start, this.rcvNxt)) {
      const cut = Math.min(seqSub(this.rcvNxt, start), data.length);
      if (cut > 0) result |= DATA_DUPLICATE;
      data = data.subarray(cut);
      start = seqAdd(start, cut);
    }
    const right = seqMax(this.rcvAdvRight, seqAdd(this.rcvNxt, this.capacity - this.queued));
    const room = seqSub(right, start);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false; // the FIN lies beyond the window: drop it, the client retransmits
    }
    if (data.length > 0 && start === this.rcvNxt && this.room() <= 0) {
      // Over budget: like a full buffer, the data is not taken; the client retransmits it.
      this.refusedBytes += data.length;
      data = data.subarray(0, 0);
      fin = false;
      result |= DATA_REFUSED;
    }
    if (data.length > 0) {
      if (start === this.rcvNxt) {
        this.append(data);
        this.rcvNxt = seqAdd(this.rcvNxt, data.length);
        result |= DATA_NEW;
        if (!this.ooo.isEmpty) {
          const more = this.ooo.takeContiguous(this.rcvNxt);
          if (more.length > 0) result |= DATA_FILLED_HOLE;
          // Copied, not queued as views: a view would keep its whole reassembly
          // page alive while the queue charges only the view's bytes (a client
          // filling one-byte holes would hold a page per two bytes).
          for (const b of more) {
            this.append(b);
            this.rcvNxt = seqAdd(this.rcvNxt, b.length);
          }
        }
      } else {
        const added = this.ooo.insert(start, data, this.rcvNxt);
        result |= added > 0 ? DATA_OUT_OF_ORDER : DATA_DUPLICATE;
      }
    }
    if (fin) {
      if (this.finReceived) result |= DATA_DUPLICATE;
      else if (seqGeq(finSeq, this.rcvNxt)) this.pendingFin = finSeq;
    }
    if (this.pendingFin !== null && this.pendingFin === this.rcvNxt) {
      this.pendingFin = null;
      this.finReceived = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      result |= DATA_FIN;
    } else if (this.pendingFin !== null) {
      result |= DATA_OUT_OF_ORDER;
    }
    return result;
  }

  /** Up to `max` in-order bytes, or null when none are queued. */
  read(max: number = Number.MAX_SAFE_INTEGER): Buffer | null {
    if (this.queued === 0 || max <= 0) return null;
    const first = this.queue[this.queueHead];
    if (first.length > max) {
      this.queue[this.queueHead] = first.subarray(max);
      this.queued -= max;
      return first.subarray(0, max);
    }
    if (first.length === this.queued || first.length === max) {
      this.shift();
      return first;
    }
    const parts: Buffer[] = [];
    let n = 0;
    while (this.queueHead < this.queue.length && n < max) {
      const b = this.queue[this.queueHead];
      if (n + b.length > max) {
        parts.push(b.subarray(0, max - n));
        this.queue[this.queueHead] = b.subarray(max - n);
        this.queued -= max - n;
        n = max;
        break;
      }
      parts.push(b);
      n += b.length;
      this.shift();
    }
    return Buffer.concat(parts, n);
  }

  /**
   * The window we would advertise now (bytes, before scaling): the advertised
   * right edge is kept, and only opened by at least min(capacity/2, MSS)
   * (RFC 9293 §3.8.6.2.2).
   */
  proposedWindow(): number {
    const current = this.window;
    // Over budget the window does not open (it may still close as data arrives).
    const free = Math.min(this.capacity - this.queued, this.maxWindow, current + Math.max(0, this.room()));
    if (free - current >= Math.min(this.capacity / 2, this.mss)) return free;
    return current;
  }

  /** Commits and returns the raw 16-bit window field for an outgoing segment. */
  advertise(): number {
    const current = this.window;
    const wnd = this.proposedWindow();
    const unit = this.windowUnit;
    // Round the kept window up so scaling never moves the right edge left.
    let field = wnd === current ? Math.ceil(wnd / unit) : Math.floor(wnd / unit);
    if (field > MAX_WINDOW_FIELD) field = MAX_WINDOW_FIELD;
    const right = seqAdd(this.rcvNxt, field * unit);
    if (seqLeq(this.rcvAdvRight, right)) this.rcvAdvRight = right;
    return field;
  }

  /**
   * Copies in-order bytes into a slab and extends the queue's last view when
   * contiguous: one allocation per SLAB_BYTES instead of one per segment (the
   * per-segment allocation dominated the receive path's cost). Slab bytes are
   * never rewritten, so views returned by read() stay valid.
   */
  private append(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      if (this.slab === null || this.slabUsed === this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
        this.slabUsed = 0;
      }
      const slab = this.slab;
      const n = Math.min(data.length - off, slab.length - this.slabUsed);
      data.copy(slab, this.slabUsed, off, off + n);
      const lastIdx = this.queue.length - 1;
      const last = lastIdx >= this.queueHead ? this.queue[lastIdx] : undefined;
      if (last !== undefined && last.buffer === slab.buffer && last.byteOffset + last.length === slab.byteOffset + this.slabUsed) {
        const start = last.byteOffset - slab.byteOffset;
        this.queue[lastIdx] = slab.subarray(start, this.slabUsed + n);
        this.queued += n;
      } else {
        this.push(slab.subarray(this.slabUsed, this.slabUsed + n));
      }
      this.slabUsed += n;
      off += n;
    }
  }

  private push(b: Buffer): void {
    this.queue.push(b);
    this.queued += b.length;
  }

  private shift(): void {
    const b = this.queue[this.queueHead];
    this.queued -= b.length;
    // The slot lets go of its slab now; compaction comes later.
    this.queue[this.queueHead] = NO_DATA;
    this.queueHead++;
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 64 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }
}
