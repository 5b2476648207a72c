// Send side of one flow: SND.UNA/SND.NXT/SND.WND, the send queue, RTO
// (RFC 6298), loss recovery (RFC 5681/6582 NewReno, RFC 6675 SACK-based
// holes and pipe), and the persist timer for zero windows (RFC 9293 §3.8.6.1).
import { CongestionControl } from './congestion';
import { MAX_RTO_MS, RttEstimator, SackScoreboard } from './retransmit';
import { SendBuffer } from './send_buffer';
import { Seq, seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqMax, seqMin, seqSub } from './seq';

/** RFC 5681 §3.2 DupThresh */
export const DUP_THRESH = 3;
/** Retransmissions of one segment before giving up (Linux tcp_retries2). */
export const MAX_RETRANSMITS = 15;

export interface SegmentSink {
  /** Emit a data/FIN segment at `seq` carrying the current ACK and window. */
  emitData(seq: Seq, payload: Buffer, fin: boolean, push: boolean): void;
}

export interface SenderStats {
  bytesOut: number;
  retransmits: number;
  fastRecoveries: number;
  rtoExpirations: number;
}

export class Sender {
  sndUna: Seq;
  sndNxt: Seq;
  sndWnd = 0;
  private sndWl1: Seq;
  private sndWl2: Seq;
  /** sequence number of the first byte in `buf` */
  private bufSeq: Seq;
  finQueued = false;
  finSeq = 0 as Seq;
  dupAcks = 0;
  inRecovery = false;
  private rtoRecovery = false;
  /** RFC 6582 "recover" */
  private recoverPoint: Seq;
  /** RFC 6675 HighRxt: just past the last retransmitted byte in this recovery */
  private highRxt: Seq;
  private forceRetransmit = false;
  // Karn's algorithm (RFC 6298 §3) when timestamps are off: one timed segment.
  private timing = false;
  private timedSeq = 0 as Seq;
  private timedAt = 0;
  rtxDeadline: number | null = null;
  persistDeadline: number | null = null;
  private persistBackoff = 0;
  private persistUnanswered = 0;
  /** consecutive timeouts without progress */
  retries = 0;
  private lastSendAt = 0;
  readonly scoreboard = new SackScoreboard();

  constructor(
    iss: Seq,
    readonly buf: SendBuffer,
    readonly smss: number,
    readonly sndWscale: number,
    readonly sackOk: boolean,
    readonly rtt: RttEstimator,
    readonly cc: CongestionControl,
    private readonly stats: SenderStats,
  ) {
    this.sndUna = iss;
    this.sndNxt = seqAdd(iss, 1); // the SYN
    this.bufSeq = seqAdd(iss, 1);
    this.recoverPoint = iss;
    this.highRxt = iss;
    this.sndWl1 = iss;
    this.sndWl2 = iss;
  }

  /** Sequence number just past everything queued (data, then FIN). */
  get sndEnd(): Seq {
    const dataEnd = seqAdd(this.bufSeq, this.buf.length);
    return this.finQueued ? seqAdd(dataEnd, 1) : dataEnd;
  }

  get flightSize(): number {
    return seqSub(this.sndNxt, this.sndUna);
  }

  get finAcked(): boolean {
    return this.finQueued && seqGt(this.sndUna, this.finSeq);
  }

  queueFin(): void {
    if (this.finQueued) return;
    this.finSeq = seqAdd(this.bufSeq, this.buf.length);
    this.finQueued = true;
  }

  /** Window from the SYN (never scaled, RFC 7323 §2.2). */
  initWindow(window: number, seq: Seq, ack: Seq): void {
    this.sndWnd = window;
    this.sndWl1 = seq;
    this.sndWl2 = ack;
  }

  /**
   * Processes the ACK field of an acceptable segment (RFC 9293 §3.10.7.4
   * fifth). `dupCandidate` is true for a segment without data/SYN/FIN.
   * Returns bytes of sequence space newly acknowledged, or -1 if the ACK
   * acknowledges something not yet sent (caller answers with an ACK).
   */
  onAck(seq: Seq, ack: Seq, window: number, sack: ReadonlyArray<readonly [number, number]> | undefined,
    dupCandidate: boolean, rttSample: number | null, now: number): number {
    if (seqGt(ack, this.sndNxt)) return -1;
    const oldWnd = this.sndWnd;
    if (seqLt(this.sndWl1, seq) || (this.sndWl1 === seq && seqLeq(this.sndWl2, ack))) {
      this.sndWnd = window * 2 ** this.sndWscale;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
    }
    if (sack !== undefined && this.sackOk && sack.length > 0) this.scoreboard.update(sack, this.sndUna, this.sndNxt);
    let acked = 0;
    if (seqGt(ack, this.sndUna)) {
      acked = this.advance(ack, rttSample, now);
    } else if (ack === this.sndUna && dupCandidate && this.flightSize > 0 && this.sndWnd === oldWnd) {
      this.dupAcks++;
    }
    if (this.sndWnd > 0) this.persistBackoff = 0;
    this.persistUnanswered = 0; // the client is alive: never give up on a zero window it keeps answering
    this.maybeEnterRecovery();
    return acked;
  }

  private advance(ack: Seq, rttSample: number | null, now: number): number {
    const acked = seqSub(ack, this.sndUna);
    const flightBefore = this.flightSize;
    if (seqGt(ack, this.bufSeq)) {
      const n = Math.min(seqSub(ack, this.bufSeq), this.buf.length);
      this.buf.consume(n);
      this.bufSeq = seqAdd(this.bufSeq, n);
    }
    this.sndUna = ack;
    if (seqLt(this.highRxt, ack)) this.highRxt = ack;
    this.scoreboard.ackTo(ack);
    if (rttSample !== null) this.rtt.sample(rttSample);
    else if (this.timing && seqGt(ack, this.timedSeq)) this.rtt.sample(now - this.timedAt);
    if (this.timing && seqGt(ack, this.timedSeq)) this.timing = false;
    this.retries = 0;
    this.rtt.resetBackoff();
    if (this.inRecovery) {
      if (seqGeq(ack, this.recoverPoint)) {
        this.inRecovery = false;
        this.dupAcks = 0;
        if (!this.rtoRecovery) this.cc.onExitRecovery(this.flightSize, now);
        this.rtoRecovery = false;
      } else if (this.rtoRecovery) {
        this.cc.onAck(acked, flightBefore, now, this.rtt.srtt); // slow start while repairing an RTO
      } else {
        // Partial ACK (RFC 6582 §3.2 step 5): the next segment is lost too; resend it now.
        this.dupAcks = 0;
        if (this.highRxt === this.sndUna) this.forceRetransmit = true;
      }
    } else {
      this.dupAcks = 0;
      this.cc.onAck(acked, flightBefore, now, this.rtt.srtt);
    }
    // RFC 6298 §5.2 / §5.3
    this.rtxDeadline = this.sndUna === this.sndNxt ? null : now + this.rtt.rto;
    return acked;
  }

  private maybeEnterRecovery(): void {
    if (this.inRecovery || this.flightSize === 0) return;
    const sackLoss = this.sackOk && this.scoreboard.sackedBytes > (DUP_THRESH - 1) * this.smss;
    if (this.dupAcks < DUP_THRESH && !sackLoss) return;
    // RFC 6582 §3.2 step 2: one reduction per window of data.
    if (seqLt(this.sndUna, this.recoverPoint)) return;
    this.inRecovery = true;
    this.rtoRecovery = false;
    this.recoverPoint = this.sndNxt;
    this.highRxt = this.sndUna;
    this.forceRetransmit = true;
    this.stats.fastRecoveries++;
    this.cc.onEnterRecovery(this.flightSize - this.scoreboard.sackedBytes, 0);
  }

  /** Bytes below which un-SACKed data counts as lost in the current recovery. */
  private lostLimit(): Seq {
    if (this.rtoRecovery) return this.recoverPoint;
    const high = this.scoreboard.highSacked;
    if (high !== null) return high;
    return seqMin(seqAdd(this.sndUna, this.smss), this.sndNxt);
  }

  /** RFC 6675 §4 pipe: bytes believed to be in the network. */
  pipe(): number {
    let p = this.flightSize - this.scoreboard.sackedBytes;
    if (!this.inRecovery) return p;
    const from = seqMax(this.highRxt, this.sndUna);
    const limit = this.lostLimit();
    if (seqLt(from, limit)) p -= seqSub(limit, from) - this.scoreboard.sackedIn(from, limit);
    // Without SACK each duplicate ACK stands for one segment that left the network.
    if (!this.sackOk && !this.rtoRecovery) p -= this.dupAcks * this.smss;
    return Math.max(0, p);
  }

  /** Sends retransmissions and new data as cwnd, the peer's window and the queue allow. */
  output(now: number, sink: SegmentSink): void {
    if (this.flightSize === 0 && this.lastSendAt > 0 && now - this.lastSendAt > this.rtt.rto) this.cc.onIdleRestart(now);
    for (let guard = 0; guard < 100_000; guard++) {
      const pipe = this.pipe();
      const cwnd = this.cc.cwnd;
      // RFC 5681 §3.2 step 4 / RFC 6675 §5 step 4.2: the first retransmission is
      // sent on entering recovery whatever pipe says.
      if (this.inRecovery && (pipe < cwnd || this.forceRetransmit)) {
        this.forceRetransmit = false;
        const from = seqMax(this.highRxt, this.sndUna);
        if (this.scoreboard.nextHole(from, this.lostLimit())) {
          const s = this.scoreboard.holeStart;
          const len = Math.min(this.smss, seqSub(this.scoreboard.holeEnd, s));
          const used = this.sendAt(s, len, sink);
          this.highRxt = seqAdd(s, Math.max(used, 1));
          this.stats.retransmits++;
          this.timing = false; // Karn: no samples across a retransmission
          this.afterSend(now);
          continue;
        }
      }
      if (!this.sendNew(now, pipe, cwnd, sink)) break;
    }
    this.updatePersist(now);
  }

  private sendNew(now: number, pipe: number, cwnd: number, sink: SegmentSink): boolean {
    const end = this.sndEnd;
    if (!seqLt(this.sndNxt, end)) return false;
    const dataEnd = seqAdd(this.bufSeq, this.buf.length);
    const availData = Math.max(0, seqSub(dataEnd, this.sndNxt));
    const wndRoom = seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    const usable = Math.min(wndRoom, cwnd - pipe);
    let len = Math.min(this.smss, availData, Math.max(0, usable));
    if (availData > 0) {
      if (len <= 0) return false;
      // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): no runt while data is in flight.
      if (len < this.smss && len < availData && this.flightSize > 0) return false;
    } else {
      // Only the FIN is left: it takes no window space, only congestion window.
      if (cwnd - pipe <= 0 && this.flightSize > 0) return false;
      len = 0;
    }
    const s = this.sndNxt;
    const used = this.sendAt(s, len, sink);
    if (!this.timing) {
      this.timing = true;
      this.timedSeq = s;
      this.timedAt = now;
    }
    this.sndNxt = seqAdd(s, used);
    this.stats.bytesOut += len;
    this.afterSend(now);
    return true;
  }

  /** Emits [s, s+len) plus the FIN if it directly follows; returns sequence space used. */
  private sendAt(s: Seq, len: number, sink: SegmentSink): number {
    const off = seqSub(s, this.bufSeq);
    const dataLen = Math.max(0, Math.min(len, this.buf.length - off));
    const payload = this.buf.slice(off, dataLen);
    const dataEnd = seqAdd(s, dataLen);
    const fin = this.finQueued && dataEnd === this.finSeq;
    const push = dataLen > 0 && dataEnd === seqAdd(this.bufSeq, this.buf.length);
    sink.emitData(s, payload, fin, push);
    return dataLen + (fin ? 1 : 0);
  }

  private afterSend(now: number): void {
    this.lastSendAt = now;
    if (this.rtxDeadline === null) this.rtxDeadline = now + this.rtt.rto;
  }

  /**
   * Retransmission timer expired (RFC 6298 §5.4-5.6): back off, collapse
   * cwnd, and repair everything outstanding that is not SACKed.
   * Returns false when the flow should give up.
   */
  onRtoExpired(now: number, sink: SegmentSink): boolean {
    this.rtxDeadline = null;
    if (this.flightSize === 0) return true;
    if (++this.retries > MAX_RETRANSMITS) return false;
    // SND.UNA inside a SACKed range means the client reneged (RFC 2018 §8).
    if (this.scoreboard.covers(this.sndUna)) this.scoreboard.clear();
    this.stats.rtoExpirations++;
    this.cc.onRto(this.flightSize - this.scoreboard.sackedBytes, now);
    this.inRecovery = true;
    this.rtoRecovery = true;
    this.recoverPoint = this.sndNxt;
    this.highRxt = this.sndUna;
    this.dupAcks = 0;
    this.timing = false;
    this.rtt.backoff();
    this.output(now, sink);
    if (this.rtxDeadline === null) this.rtxDeadline = now + this.rtt.rto;
    return true;
  }

  private updatePersist(now: number): void {
    const blocked = this.sndWnd === 0 && this.flightSize === 0 && seqLt(this.sndNxt, this.sndEnd);
    if (!blocked) {
      this.persistDeadline = null;
      return;
    }
    if (this.persistDeadline === null) this.persistDeadline = now + this.persistInterval();
  }

  private persistInterval(): number {
    return Math.min(this.rtt.rto * 2 ** this.persistBackoff, MAX_RTO_MS);
  }

  /**
   * Persist timer expired: the caller sends a window probe. Returns false
   * when too many probes went unanswered.
   */
  onPersistExpired(now: number): boolean {
    if (++this.persistUnanswered > MAX_RETRANSMITS) return false;
    if (this.rtt.rto * 2 ** this.persistBackoff < MAX_RTO_MS) this.persistBackoff++;
    this.persistDeadline = now + this.persistInterval();
    return true;
  }
}
