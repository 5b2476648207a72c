// Per-segment metadata of the data in flight (SND.UNA..SND.NXT), in sequence
// order: boundaries, last transmit time and SACKed/lost/retransmitted state.
// RACK (RFC 8985 §5.2) needs a transmit timestamp per segment; the state
// flags give pipe as Linux counts it: in flight - SACKed - lost + retransmitted.
// Kept in a ring of typed arrays so the hot path allocates nothing per segment.
import { Seq, seqGt, seqLeq, seqLt, seqSub } from './seq';

/** Covered by a SACK block. */
export const SEG_SACKED = 1;
/** Declared lost (RACK, NewReno or RTO) and not SACKed since. */
export const SEG_LOST = 2;
/** A retransmission of a lost segment is in flight. */
export const SEG_RTX = 4;
/** Sent more than once: its ACK is ambiguous (RFC 8985 §6.2 step 2). */
export const SEG_EVER_RETRANS = 8;

const INITIAL_CAPACITY = 64;

export interface DeliveryObserver {
  /** A segment was cumulatively ACKed or SACKed for the first time. */
  onDelivered(xmitTs: number, endSeq: Seq, everRetransmitted: boolean, now: number): void;
}

export class SegmentLog {
  start = new Uint32Array(INITIAL_CAPACITY);
  end = new Uint32Array(INITIAL_CAPACITY);
  xmitTs = new Float64Array(INITIAL_CAPACITY);
  flags = new Uint8Array(INITIAL_CAPACITY);
  mask = INITIAL_CAPACITY - 1;
  /** absolute id of the oldest entry; entry id lives at index id & mask */
  headId = 0;
  /** absolute id one past the newest entry */
  tailId = 0;
  sackedBytes = 0;
  sackedSegs = 0;
  /** bytes marked lost (retransmitted or not) */
  lostBytes = 0;
  /** bytes whose retransmission is in flight */
  rtxBytes = 0;
  /** lost segments not yet retransmitted */
  lostPending = 0;
  /** no entry below this id is lost and waiting for retransmission */
  private rtxHint = 0;

  get count(): number {
    return this.tailId - this.headId;
  }

  /** A new segment [s, e) went out at `now`. */
  append(s: Seq, e: Seq, now: number): void {
    if (this.tailId - this.headId > this.mask) this.grow();
    const i = this.tailId & this.mask;
    this.start[i] = s;
    this.end[i] = e;
    this.xmitTs[i] = now;
    this.flags[i] = 0;
    this.tailId++;
  }

  /** Id of the first entry whose end lies beyond `seq` (binary search). */
  findAfter(seq: Seq): number {
    let lo = this.headId;
    let hi = this.tailId;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLeq(this.end[mid & this.mask] as Seq, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops entries below the new SND.UNA (trimming a partly ACKed one). */
  ackTo(una: Seq, obs: DeliveryObserver, now: number): void {
    while (this.headId < this.tailId) {
      const i = this.headId & this.mask;
      const e = this.end[i] as Seq;
      const s = this.start[i] as Seq;
      if (seqLeq(e, una)) {
        const f = this.flags[i];
        if ((f & SEG_SACKED) === 0) obs.onDelivered(this.xmitTs[i], e, (f & SEG_EVER_RETRANS) !== 0, now);
        this.forget(i, seqSub(e, s));
        this.headId++;
        continue;
      }
      if (seqGt(una, s)) {
        this.forget(i, seqSub(una, s)); // the rest keeps its state
        this.start[i] = una;
      }
      break;
    }
    if (this.rtxHint < this.headId) this.rtxHint = this.headId;
  }

  /** Removes `n` bytes of entry i from the counters. */
  private forget(i: number, n: number): void {
    const f = this.flags[i];
    if (f & SEG_SACKED) {
      this.sackedBytes -= n;
      if (seqSub(this.end[i] as Seq, this.start[i] as Seq) === n) this.sackedSegs--;
    }
    if (f & SEG_LOST) {
      this.lostBytes -= n;
      if ((f & SEG_RTX) === 0 && seqSub(this.end[i] as Seq, this.start[i] as Seq) === n) this.lostPending--;
    }
    if (f & SEG_RTX) this.rtxBytes -= n;
  }

  /**
   * SACK of the newly covered bytes [from, to) inside the receiver's range
   * [rangeStart, rangeEnd): entries wholly inside that range become SACKED.
   */
  markSacked(from: Seq, to: Seq, rangeStart: Seq, rangeEnd: Seq, obs: DeliveryObserver, now: number): void {
    for (let id = this.findAfter(from); id < this.tailId; id++) {
      const i = id & this.mask;
      const s = this.start[i] as Seq;
      if (!seqLt(s, to)) break;
      const f = this.flags[i];
      if (f & SEG_SACKED || seqLt(s, rangeStart) || seqGt(this.end[i] as Seq, rangeEnd)) continue;
      const len = seqSub(this.end[i] as Seq, s);
      this.forget(i, len);
      this.flags[i] = (f & SEG_EVER_RETRANS) | SEG_SACKED;
      this.sackedBytes += len;
      this.sackedSegs++;
      obs.onDelivered(this.xmitTs[i], this.end[i] as Seq, (f & SEG_EVER_RETRANS) !== 0, now);
    }
  }

  /** Marks entry `id` lost; a lost retransmission becomes pending again. */
  markLost(id: number): void {
    const i = id & this.mask;
    const f = this.flags[i];
    if (f & SEG_SACKED) return;
    const len = seqSub(this.end[i] as Seq, this.start[i] as Seq);
    if (f & SEG_RTX) {
      this.rtxBytes -= len;
    } else if (f & SEG_LOST) {
      return;
    } else {
      this.lostBytes += len;
    }
    this.flags[i] = (f & ~SEG_RTX) | SEG_LOST;
    this.lostPending++;
    if (id < this.rtxHint) this.rtxHint = id;
  }

  /** Id of the first lost segment awaiting retransmission, or -1. */
  nextLost(): number {
    if (this.lostPending === 0) return -1;
    for (let id = Math.max(this.rtxHint, this.headId); id < this.tailId; id++) {
      if ((this.flags[id & this.mask] & (SEG_LOST | SEG_RTX | SEG_SACKED)) === SEG_LOST) {
        this.rtxHint = id;
        return id;
      }
    }
    this.rtxHint = this.tailId;
    return -1;
  }

  /** Entry `id` was sent again at `now`; `repair` when it had been declared lost. */
  retransmitted(id: number, now: number, repair: boolean): void {
    const i = id & this.mask;
    this.xmitTs[i] = now;
    if (repair && (this.flags[i] & (SEG_LOST | SEG_RTX)) === SEG_LOST) {
      this.flags[i] |= SEG_RTX;
      this.rtxBytes += seqSub(this.end[i] as Seq, this.start[i] as Seq);
      this.lostPending--;
    }
    this.flags[i] |= SEG_EVER_RETRANS;
  }

  /** Forgets all SACK marks: the receiver reneged (RFC 2018 §8). */
  clearSacks(): void {
    for (let id = this.headId; id < this.tailId; id++) this.flags[id & this.mask] &= ~SEG_SACKED;
    this.sackedBytes = 0;
    this.sackedSegs = 0;
  }

  isSacked(id: number): boolean {
    return (this.flags[id & this.mask] & SEG_SACKED) !== 0;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const start = new Uint32Array(cap);
    const end = new Uint32Array(cap);
    const xmitTs = new Float64Array(cap);
    const flags = new Uint8Array(cap);
    for (let id = this.headId; id < this.tailId; id++) {
      const from = id & this.mask;
      const to = id & (cap - 1);
      start[to] = this.start[from];
      end[to] = this.end[from];
      xmitTs[to] = this.xmitTs[from];
      flags[to] = this.flags[from];
    }
    this.start = start;
    this.end = end;
    this.xmitTs = xmitTs;
    this.flags = flags;
    this.mask = cap - 1;
  }
}
