// Retransmission bookkeeping: the RTO estimator (RFC 6298) and the SACK
// scoreboard (RFC 6675 §3): the byte ranges the client holds, which tells the
// segment log which segments a SACK newly covers.
import { Seq, seqGeq, seqGt, seqLeq, seqLt, seqMax, seqMin, seqSub } from './seq';

/** RFC 6298 §2.4 says 1 s; Linux uses 200 ms, which the brief allows. */
export const MIN_RTO_MS = 200;
/** RFC 6298 §2.5: a maximum of at least 60 s may be placed on RTO. */
export const MAX_RTO_MS = 60_000;
/** RFC 6298 §2.1 */
export const INITIAL_RTO_MS = 1000;
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;
/** clock granularity G in ms */
const G = 1;

export class RttEstimator {
  srtt = 0;
  rttvar = 0;
  private baseRto: number;
  private backoffs = 0;
  private sampled = false;

  constructor(initialRtoMs: number = INITIAL_RTO_MS, private readonly minRto: number = MIN_RTO_MS) {
    this.baseRto = initialRtoMs;
  }

  /** Current RTO including exponential backoff (RFC 6298 §5.5), capped at MAX_RTO_MS. */
  get rto(): number {
    // Read for every segment sent: no power computed while there is no backoff.
    return Math.min(this.backoffs === 0 ? this.baseRto : this.baseRto * 2 ** this.backoffs, MAX_RTO_MS);
  }

  /** Whether SRTT holds a measurement (RFC 8985 §7.2 "if SRTT is available"). */
  get hasSample(): boolean {
    return this.sampled;
  }

  get backoffCount(): number {
    return this.backoffs;
  }

  /** RFC 6298 §2.2 / §2.3 */
  sample(r: number): void {
    if (r < 0) return;
    if (!this.sampled) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.sampled = true;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    this.baseRto = Math.min(MAX_RTO_MS, Math.max(this.minRto, this.srtt + Math.max(G, K * this.rttvar)));
    this.backoffs = 0;
  }

  backoff(): void {
    if (this.baseRto * 2 ** this.backoffs < MAX_RTO_MS) this.backoffs++;
  }

  resetBackoff(): void {
    this.backoffs = 0;
  }
}

/** Receives the bytes a SACK newly covers, with the receiver's merged range around them. */
export interface SackSink {
  onNewlySacked(from: Seq, to: Seq, rangeStart: Seq, rangeEnd: Seq): void;
}

interface Range {
  start: Seq;
  end: Seq;
}

/**
 * Separate SACKed ranges kept at most. Real loss leaves a few dozen holes in
 * a window; a client that SACKs every other byte would otherwise grow the
 * list without bound and make each block's insertion a walk over it. Blocks
 * that would add a range beyond this are ignored: SACK is advisory (RFC 2018
 * §8), so the data is only resent sooner or later than it could have been.
 */
export const MAX_SACK_RANGES = 256;

/** SACKed ranges above SND.UNA, kept sorted and merged (at most MAX_SACK_RANGES). */
export class SackScoreboard {
  private ranges: Range[] = [];
  private sacked = 0;
  holeStart = 0 as Seq;
  holeEnd = 0 as Seq;

  get sackedBytes(): number {
    return this.sacked;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** End of the highest SACKed range (RFC 6675 "HighACK"/"HighSACK"), or null. */
  get highSacked(): Seq | null {
    const n = this.ranges.length;
    return n === 0 ? null : this.ranges[n - 1].end;
  }

  /** Whether `seq` lies inside a SACKed range (a sign of reneging when seq = SND.UNA). */
  covers(seq: Seq): boolean {
    for (const r of this.ranges) {
      if (seqLt(seq, r.start)) return false;
      if (seqLt(seq, r.end)) return true;
    }
    return false;
  }

  /** Adds the blocks of one ACK; returns the number of newly SACKed bytes. */
  update(blocks: ReadonlyArray<readonly [number, number]>, sndUna: Seq, sndMax: Seq, sink?: SackSink): number {
    const before = this.sacked;
    for (const [l, r] of blocks) {
      let start = l as Seq;
      const end = seqMin(r as Seq, sndMax);
      // Blocks at or below SND.UNA are D-SACKs (RFC 2883) or stale: ignore.
      if (!seqGt(end, sndUna) || !seqLt(start, end)) continue;
      start = seqMax(start, sndUna);
      this.add(start, end, sink);
    }
    return this.sacked - before;
  }

  /** Forgets everything below the new SND.UNA. */
  ackTo(sndUna: Seq): void {
    let drop = 0;
    for (const r of this.ranges) {
      if (seqLeq(r.end, sndUna)) {
        this.sacked -= seqSub(r.end, r.start);
        drop++;
      } else {
        if (seqLt(r.start, sndUna)) {
          this.sacked -= seqSub(sndUna, r.start);
          r.start = sndUna;
        }
        break;
      }
    }
    if (drop > 0) this.ranges.splice(0, drop);
  }

  /** Bytes SACKed within [a, b). */
  sackedIn(a: Seq, b: Seq): number {
    let n = 0;
    for (const r of this.ranges) {
      if (seqGeq(r.start, b)) break;
      const s = seqMax(r.start, a);
      const e = seqMin(r.end, b);
      if (seqLt(s, e)) n += seqSub(e, s);
    }
    return n;
  }

  /**
   * Finds the first un-SACKed range starting at or after `from` and below
   * `limit`; sets holeStart/holeEnd (clipped to limit) and returns true.
   */
  nextHole(from: Seq, limit: Seq): boolean {
    let cursor = from;
    for (const r of this.ranges) {
      if (seqLeq(r.end, cursor)) continue;
      if (seqGt(r.start, cursor)) break;
      cursor = r.end;
    }
    if (!seqLt(cursor, limit)) return false;
    let end = limit;
    for (const r of this.ranges) {
      if (seqGt(r.start, cursor)) {
        end = seqMin(r.start, limit);
        break;
      }
    }
    this.holeStart = cursor;
    this.holeEnd = end;
    return true;
  }

  clear(): void {
    this.ranges = [];
    this.sacked = 0;
  }

  private add(start: Seq, end: Seq, sink: SackSink | undefined): void {
    // The first range that ends at or after start (could merge): ranges are disjoint, so their ends ascend.
    let i = 0;
    let hi = this.ranges.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (seqLt(this.ranges[mid].end, start)) i = mid + 1;
      else hi = mid;
    }
    const first = this.ranges[i];
    // The common case: the client repeats a block we already hold.
    if (first !== undefined && seqLeq(first.start, start) && seqGeq(first.end, end)) return;
    let j = i;
    let s = start;
    let e = end;
    while (j < this.ranges.length && seqLeq(this.ranges[j].start, e)) {
      const r = this.ranges[j];
      s = seqMin(s, r.start);
      e = seqMax(e, r.end);
      j++;
    }
    // A range of its own, past the bound: ignored.
    if (j === i && this.ranges.length >= MAX_SACK_RANGES) return;
    for (let k = i; k < j; k++) this.sacked -= seqSub(this.ranges[k].end, this.ranges[k].start);
    if (sink !== undefined) this.emitNew(start, end, i, j, s, e, sink);
    this.ranges.splice(i, j - i, { start: s, end: e });
    this.sacked += seqSub(e, s);
  }

  /** Emits the parts of [start, end) not covered by ranges[i..j). */
  private emitNew(start: Seq, end: Seq, i: number, j: number, s: Seq, e: Seq, sink: SackSink): void {
    let cursor = start;
    for (let k = i; k < j; k++) {
      const r = this.ranges[k];
      const gapEnd = seqMin(r.start, end);
      if (seqLt(cursor, gapEnd)) sink.onNewlySacked(cursor, gapEnd, s, e);
      cursor = seqMax(cursor, r.end);
    }
    if (seqLt(cursor, end)) sink.onNewlySacked(cursor, end, s, e);
  }
}

/** RFC 2883 §4: the first block reports a duplicate if it lies below the ACK or inside the second block. */
export function dsackOf(sack: ReadonlyArray<readonly [number, number]>, ack: Seq): Seq | null {
  const l = sack[0][0] as Seq;
  const r = sack[0][1] as Seq;
  if (seqLeq(r, ack)) return l;
  if (sack.length > 1 && seqGeq(l, sack[1][0] as Seq) && seqLeq(r, sack[1][1] as Seq)) return l;
  return null;
}
