// Out-of-order receive queue (RFC 9293 §3.10.7.4 "seventh, process the segment
// text"; SACK reporting per RFC 2018 §4). Holds copies of segments beyond
// RCV.NXT, never more than `capacity` bytes, and hands back contiguous data
// once the hole at RCV.NXT fills.
import { Seq, seqAdd, seqGt, seqLeq, seqLt, seqSub } from './seq';

interface Piece {
  start: Seq;
  end: Seq;
  data: Buffer;
  /** insertion counter of the newest data in this piece: SACK block order */
  stamp: number;
}

export type SackBlock = [number, number];

export class Reassembly {
  private pieces: Piece[] = [];
  private stampCounter = 0;
  private held = 0;

  constructor(readonly capacity: number) {}

  get bytes(): number {
    return this.held;
  }

  get isEmpty(): boolean {
    return this.pieces.length === 0;
  }

  /**
   * Stores the parts of [seq, seq+data.length) that are not held yet, copying
   * them (the caller's buffer may be reused). Data at or before rcvNxt is
   * ignored. Returns the number of new bytes stored.
   */
  insert(seq: Seq, data: Buffer, rcvNxt: Seq): number {
    let cursor = seq;
    let end = seqAdd(seq, data.length);
    if (seqLeq(end, rcvNxt)) return 0;
    if (seqLt(cursor, rcvNxt)) cursor = rcvNxt;
    const room = this.capacity - this.held;
    if (room <= 0) return 0;
    const stamp = ++this.stampCounter;
    let i = this.firstEndingAfter(cursor, rcvNxt);
    let added = 0;
    while (seqLt(cursor, end)) {
      const p = i < this.pieces.length ? this.pieces[i] : undefined;
      if (p !== undefined && seqLeq(p.start, cursor)) {
        // Already held: keep the old bytes (first copy wins, as in RFC 9293 §3.10.7.4).
        p.stamp = stamp;
        cursor = p.end;
        i++;
        continue;
      }
      let gapEnd = p !== undefined && seqLt(p.start, end) ? p.start : end;
      const allowed = room - added;
      if (allowed <= 0) break;
      if (seqSub(gapEnd, cursor) > allowed) {
        gapEnd = seqAdd(cursor, allowed);
        end = gapEnd;
      }
      const off = seqSub(cursor, seq);
      const len = seqSub(gapEnd, cursor);
      const copy = Buffer.allocUnsafe(len);
      data.copy(copy, 0, off, off + len);
      this.pieces.splice(i, 0, { start: cursor, end: gapEnd, data: copy, stamp });
      added += len;
      i++;
      cursor = gapEnd;
    }
    this.held += added;
    return added;
  }

  /** Removes and returns data contiguous from rcvNxt (empty if the hole is still open). */
  takeContiguous(rcvNxt: Seq): Buffer[] {
    const out: Buffer[] = [];
    let next = rcvNxt;
    let drop = 0;
    for (const p of this.pieces) {
      if (seqGt(p.start, next)) break;
      drop++;
      this.held -= p.data.length;
      if (seqLeq(p.end, next)) continue;
      out.push(p.data.subarray(seqSub(next, p.start)));
      next = p.end;
    }
    if (drop > 0) this.pieces.splice(0, drop);
    return out;
  }

  /** Sequence number just past the highest byte held (or null when empty). */
  highestEnd(): Seq | null {
    const n = this.pieces.length;
    return n === 0 ? null : this.pieces[n - 1].end;
  }

  /** SACK blocks, most recently changed first (RFC 2018 §4), at most `max`. */
  sackBlocks(max: number): SackBlock[] {
    const blocks: Array<{ start: Seq; end: Seq; stamp: number }> = [];
    for (const p of this.pieces) {
      const last = blocks.length > 0 ? blocks[blocks.length - 1] : undefined;
      if (last !== undefined && last.end === p.start) {
        last.end = p.end;
        if (p.stamp > last.stamp) last.stamp = p.stamp;
      } else {
        blocks.push({ start: p.start, end: p.end, stamp: p.stamp });
      }
    }
    blocks.sort((a, b) => b.stamp - a.stamp);
    const out: SackBlock[] = [];
    for (let i = 0; i < blocks.length && i < max; i++) out.push([blocks[i].start, blocks[i].end]);
    return out;
  }

  clear(): void {
    this.pieces = [];
    this.held = 0;
  }

  private firstEndingAfter(x: Seq, rcvNxt: Seq): number {
    // Binary search on offsets from rcvNxt, which are monotonic in the array.
    const target = seqSub(x, rcvNxt);
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqSub(this.pieces[mid].end, rcvNxt) <= target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
