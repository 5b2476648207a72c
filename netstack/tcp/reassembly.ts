// Out-of-order receive queue (RFC 9293 §3.10.7.4 "seventh, process the segment
// text"; SACK reporting per RFC 2018 §4). Holds copies of segments beyond
// RCV.NXT and hands back contiguous data once the hole at RCV.NXT fills.
//
// Bounded three ways, because the client chooses what to send: at most
// `capacity` bytes of data, at most `maxPieces` disjoint ranges (adjacent and
// overlapping ranges merge on insert), and the bytes live in fixed-size pages
// indexed by sequence number, never one buffer per segment. One-byte segments
// at every other byte of a 1 MiB window used to make 524,287 pieces (84 MB);
// now they make `maxPieces` ranges over a few pages.
import { Seq, seqAdd, seqGt, seqLeq, seqLt, seqSub } from './seq';

/** Page of stored bytes; a window of W bytes touches at most W/PAGE + 1 pages. */
const PAGE_BITS = 13;
const PAGE = 1 << PAGE_BITS;
/** Page numbers wrap with the 32-bit sequence space. */
const PAGE_MASK = (0x1_0000_0000 / PAGE) - 1;
/** Bytes charged per range for its bookkeeping (object, array slot). */
const PIECE_OVERHEAD = 64;
/** Enough for heavy loss in a large window: SACK reports only 3-4 ranges anyway. */
export const DEFAULT_MAX_PIECES = 256;

interface Piece {
  start: Seq;
  end: Seq;
  /** insertion counter of the newest data in this range: SACK block order */
  stamp: number;
}

export type SackBlock = [number, number];

/** Why insert() stored less than it was given (counted by the caller). */
export interface ReassemblyRefusals {
  /** bytes beyond `capacity` */
  bytes: number;
  /** bytes refused because a new range would exceed `maxPieces` */
  pieces: number;
  /** bytes refused because the owner's buffer budget was exhausted */
  budget: number;
}

export class Reassembly {
  private pieces: Piece[] = [];
  private readonly pages = new Map<number, Buffer>();
  /** Page of the lowest byte that may still be held: pages from here up to RCV.NXT's are released as it advances. */
  private floorPage = 0;
  private stampCounter = 0;
  private held = 0;
  readonly refused: ReassemblyRefusals = { bytes: 0, pieces: 0, budget: 0 };

  constructor(
    readonly capacity: number,
    readonly maxPieces: number = DEFAULT_MAX_PIECES,
    /** Asked before storing `bytes`: false while the flow's owner is over its buffer budget. */
    private readonly mayStore: (bytes: number) => boolean = () => true,
  ) {}

  /** Bytes of data held. */
  get bytes(): number {
    return this.held;
  }

  /** Memory held for this queue: pages plus range bookkeeping (for buffer budgets). */
  get memory(): number {
    return this.pages.size * PAGE + this.pieces.length * PIECE_OVERHEAD;
  }

  get pieceCount(): number {
    return this.pieces.length;
  }

  get isEmpty(): boolean {
    return this.pieces.length === 0;
  }

  /**
   * Stores the parts of [seq, seq+data.length) that are not held yet, copying
   * them (the caller's buffer may be reused), and merges the range with the
   * ranges it touches. Data at or before rcvNxt is ignored. Returns the
   * number of new bytes stored.
   */
  insert(seq: Seq, data: Buffer, rcvNxt: Seq): number {
    let start = seq;
    let end = seqAdd(seq, data.length);
    if (seqLeq(end, rcvNxt)) return 0;
    if (seqLt(start, rcvNxt)) start = rcvNxt;
    const pieces = this.pieces;
    // [first, last) are the ranges that overlap or touch [start, end).
    const first = this.firstEndingAtOrAfter(start, rcvNxt);
    let last = first;
    while (last < pieces.length && seqLeq(pieces[last].start, end)) last++;
    if (first === last && pieces.length >= this.maxPieces) {
      this.refused.pieces += seqSub(end, start);
      return 0;
    }
    const wanted = this.uncovered(start, end, first, last);
    if (wanted > 0 && !this.mayStore(wanted)) {
      this.refused.budget += wanted;
      return 0;
    }
    const room = this.capacity - this.held;
    if (wanted > room) {
      // Keep what fits from the left: it is nearer RCV.NXT, so delivered sooner.
      this.refused.bytes += wanted - room;
      end = this.cutAfter(start, room, first, last);
      if (seqLeq(end, start)) return 0;
      while (last > first && seqGt(pieces[last - 1].start, end)) last--;
      if (first === last && pieces.length >= this.maxPieces) return 0;
    }
    if (this.pages.size === 0) this.floorPage = rcvNxt >>> PAGE_BITS;
    const added = this.fillGaps(seq, data, start, end, first, last);
    this.held += added;
    const stamp = ++this.stampCounter;
    if (first === last) {
      pieces.splice(first, 0, { start, end, stamp });
    } else {
      const merged = pieces[first];
      if (seqLt(start, merged.start)) merged.start = start;
      const lastEnd = pieces[last - 1].end;
      merged.end = seqGt(end, lastEnd) ? end : lastEnd;
      merged.stamp = stamp;
      if (last - first > 1) pieces.splice(first + 1, last - first - 1);
    }
    return added;
  }

  /** Removes and returns data contiguous from rcvNxt (empty if the hole is still open). */
  takeContiguous(rcvNxt: Seq): Buffer[] {
    const out: Buffer[] = [];
    let drop = 0;
    for (const p of this.pieces) {
      if (seqGt(p.start, rcvNxt)) break;
      drop++;
      this.held -= seqSub(p.end, p.start);
      if (seqLeq(p.end, rcvNxt)) continue;
      // Merged on insert: at most one range reaches past rcvNxt from at or below it.
      this.views(rcvNxt, p.end, out);
      rcvNxt = p.end;
    }
    if (drop > 0) this.pieces.splice(0, drop);
    this.releasePagesBelow(rcvNxt);
    return out;
  }

  /** Sequence number just past the highest byte held (or null when empty). */
  highestEnd(): Seq | null {
    const n = this.pieces.length;
    return n === 0 ? null : this.pieces[n - 1].end;
  }

  /** SACK blocks, most recently changed first (RFC 2018 §4), at most `max`. */
  sackBlocks(max: number): SackBlock[] {
    // A partial selection: max is 3 or 4, the ranges up to maxPieces.
    const chosen: Piece[] = [];
    for (const p of this.pieces) {
      if (chosen.length === max && p.stamp <= chosen[max - 1].stamp) continue;
      let i = chosen.length === max ? max - 1 : chosen.length;
      while (i > 0 && chosen[i - 1].stamp < p.stamp) {
        if (i < max) chosen[i] = chosen[i - 1];
        i--;
      }
      chosen[i] = p;
    }
    return chosen.map((p) => [p.start, p.end]);
  }

  clear(): void {
    this.pieces = [];
    this.pages.clear();
    this.held = 0;
  }

  /** Bytes of [start, end) not yet held, given the ranges [first, last) that touch it. */
  private uncovered(start: Seq, end: Seq, first: number, last: number): number {
    let n = seqSub(end, start);
    for (let i = first; i < last; i++) {
      const p = this.pieces[i];
      const a = seqGt(p.start, start) ? p.start : start;
      const b = seqLt(p.end, end) ? p.end : end;
      if (seqLt(a, b)) n -= seqSub(b, a);
    }
    return n;
  }

  /** The end of the longest prefix of [start, ...) whose uncovered bytes fit in `room`. */
  private cutAfter(start: Seq, room: number, first: number, last: number): Seq {
    let cursor = start;
    for (let i = first; i < last; i++) {
      const p = this.pieces[i];
      if (seqLt(cursor, p.start)) {
        const gap = seqSub(p.start, cursor);
        if (gap >= room) return seqAdd(cursor, room);
        room -= gap;
      }
      if (seqGt(p.end, cursor)) cursor = p.end;
    }
    return seqAdd(cursor, room);
  }

  /** Copies the gaps of [start, end) between the ranges [first, last) into pages; first copy wins (RFC 9293 §3.10.7.4). */
  private fillGaps(seq: Seq, data: Buffer, start: Seq, end: Seq, first: number, last: number): number {
    let cursor = start;
    let added = 0;
    for (let i = first; i <= last && seqLt(cursor, end); i++) {
      const p = i < last ? this.pieces[i] : undefined;
      const gapEnd = p !== undefined && seqLt(p.start, end) ? p.start : end;
      if (seqLt(cursor, gapEnd)) {
        this.write(cursor, data, seqSub(cursor, seq), seqSub(gapEnd, cursor));
        added += seqSub(gapEnd, cursor);
      }
      if (p !== undefined && seqGt(p.end, cursor)) cursor = p.end;
    }
    return added;
  }

  private write(at: Seq, data: Buffer, off: number, len: number): void {
    while (len > 0) {
      const pageNo = at >>> PAGE_BITS;
      const within = at & (PAGE - 1);
      let page = this.pages.get(pageNo);
      if (page === undefined) {
        page = Buffer.allocUnsafeSlow(PAGE);
        this.pages.set(pageNo, page);
      }
      const n = Math.min(len, PAGE - within);
      data.copy(page, within, off, off + n);
      at = seqAdd(at, n);
      off += n;
      len -= n;
    }
  }

  /**
   * Views of [from, to) in the pages, no copy. Safe although pages are
   * reused: later inserts only write at or beyond the new RCV.NXT.
   */
  private views(from: Seq, to: Seq, out: Buffer[]): void {
    while (seqLt(from, to)) {
      const page = this.pages.get(from >>> PAGE_BITS) as Buffer;
      const within = from & (PAGE - 1);
      const n = Math.min(seqSub(to, from), PAGE - within);
      out.push(page.subarray(within, within + n));
      from = seqAdd(from, n);
    }
  }

  /** Forgets pages wholly below rcvNxt (views handed out keep their memory alive until read). */
  private releasePagesBelow(rcvNxt: Seq): void {
    if (this.pages.size === 0) return;
    if (this.pieces.length === 0) {
      this.pages.clear();
      return;
    }
    const current = rcvNxt >>> PAGE_BITS;
    for (let p = this.floorPage; p !== current; p = (p + 1) & PAGE_MASK) this.pages.delete(p);
    this.floorPage = current;
  }

  private firstEndingAtOrAfter(x: Seq, rcvNxt: Seq): number {
    // Binary search on offsets from rcvNxt, which are monotonic in the array.
    const target = seqSub(x, rcvNxt);
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqSub(this.pieces[mid].end, rcvNxt) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
