// Send side of one flow: SND.UNA/SND.NXT/SND.WND, what to send next from
// the send queue (send_queue.ts), loss detection (RACK-TLP, RFC 8985, with
// SACK; NewReno, RFC 6582, without), cwnd during recovery (PRR, RFC 6937),
// RTO as the last resort (RFC 6298), and the persist timer for zero windows
// (persist.ts).
import { MAX_RETRANSMITS } from './config';
import { CongestionControl } from './congestion';
import { PersistTimer } from './persist';
import { Prr } from './prr';
import { DUP_THRESH, Rack, TailLossProbe } from './rack';
import { RttEstimator, SackScoreboard, SackSink, dsackOf } from './retransmit';
import { SEG_RTX, SegmentLog } from './segment_log';
import { SendBuffer } from './send_buffer';
import { SegmentSink, SendQueue } from './send_queue';
import { Seq, seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqSub } from './seq';
import { minOf } from './timers';

export { DUP_THRESH } from './rack';

export interface SenderStats {
  bytesOut: number;
  retransmits: number;
  fastRecoveries: number;
  rtoExpirations: number;
  lossProbes: number;
}

export class Sender implements SackSink {
  sndUna: Seq;
  sndNxt: Seq;
  sndWnd = 0;
  private sndWl1: Seq;
  private sndWl2: Seq;
  readonly queue: SendQueue;
  dupAcks = 0;
  inRecovery = false;
  private rtoRecovery = false;
  /** RFC 6582 "recover": SND.NXT when the current recovery began */
  private recoverPoint: Seq;
  // Karn's algorithm (RFC 6298 §3) when timestamps are off: one timed segment.
  private timing = false;
  private timedSeq = 0 as Seq;
  private timedAt = 0;
  /** RFC 6298 retransmission timer */
  rtoAt: number | null = null;
  /** RFC 8985 §6.2 step 5 reordering timer */
  private reoAt: number | null = null;
  /** RFC 8985 §7.2 loss probe timer */
  private ptoAt: number | null = null;
  private ptoRestart = false;
  /** FlightSize when the last probe was sent: the window in which its loss happened */
  private probeFlight = 0;
  readonly persist = new PersistTimer();
  /** consecutive timeouts without progress */
  retries = 0;
  private lastSendAt = 0;
  private ackNow = 0;
  readonly scoreboard = new SackScoreboard();
  readonly log = new SegmentLog();
  readonly rack = new Rack();
  private readonly tlp = new TailLossProbe();
  private readonly prr = new Prr();
  /** Bytes per unit of the client's window field (2^SND.WIND.SHIFT). */
  private readonly sndWindowUnit: number;

  constructor(
    iss: Seq,
    buf: SendBuffer,
    readonly smss: number,
    readonly sndWscale: number,
    readonly sackOk: boolean,
    readonly rtt: RttEstimator,
    readonly cc: CongestionControl,
    private readonly stats: SenderStats,
  ) {
    this.sndWindowUnit = 2 ** sndWscale;
    this.sndUna = iss;
    this.sndNxt = seqAdd(iss, 1); // the SYN
    this.queue = new SendQueue(buf, seqAdd(iss, 1));
    this.recoverPoint = iss;
    this.sndWl1 = iss;
    this.sndWl2 = iss;
  }

  get flightSize(): number {
    return seqSub(this.sndNxt, this.sndUna);
  }

  get finAcked(): boolean {
    return this.queue.finQueued && seqGt(this.sndUna, this.queue.finSeq);
  }

  get persistDeadline(): number | null {
    return this.persist.deadline;
  }

  /** The congestion window in force: PRR's during fast recovery, else the algorithm's. */
  get cwnd(): number {
    return this.inRecovery && !this.rtoRecovery ? this.prr.cwnd : this.cc.cwnd;
  }

  /** The earliest of the RTO, reordering and loss-probe timers. */
  get rtxDeadline(): number | null {
    return minOf(minOf(this.rtoAt, this.reoAt), this.ptoAt);
  }

  stopTimers(): void {
    this.rtoAt = this.reoAt = this.ptoAt = null;
    this.persist.deadline = null;
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
      this.sndWnd = window * this.sndWindowUnit;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
    }
    const sackedBefore = this.log.sackedBytes;
    this.rack.beginAck();
    let dsackStart: Seq | null = null;
    if (sack !== undefined && this.sackOk && sack.length > 0) {
      dsackStart = dsackOf(sack, ack);
      this.ackNow = now;
      this.scoreboard.update(sack, this.sndUna, this.sndNxt, this);
    }
    const wasInRecovery = this.inRecovery;
    let acked = 0;
    let dup = false;
    if (seqGt(ack, this.sndUna)) {
      acked = this.advance(ack, rttSample, now);
    } else if (ack === this.sndUna && dupCandidate && this.flightSize > 0 && this.sndWnd === oldWnd) {
      this.dupAcks++;
      dup = true;
    }
    this.persist.onAck(this.sndWnd);
    // RFC 6937 DeliveredData; without SACK each duplicate ACK stands for one segment.
    const sackedDelta = this.log.sackedBytes - sackedBefore;
    const delivered = this.sackOk ? acked + sackedDelta : acked > 0 ? acked : dup ? this.smss : 0;
    if (this.sackOk) {
      this.rack.updateReoWnd(dsackStart !== null, this.sndUna, this.sndNxt, wasInRecovery && !this.inRecovery);
      this.detectLoss(now);
      if (this.tlp.onAck(ack, dsackStart, acked === 0 && sackedDelta <= 0)) this.onTlpRepairedLoss(now);
    } else if (!this.inRecovery && this.dupAcks >= DUP_THRESH && this.log.count > 0) {
      this.log.markLost(this.log.headId); // RFC 5681 §3.2 fast retransmit
    }
    if (this.log.lostPending > 0 && !this.inRecovery) this.enterRecovery(now);
    if (this.inRecovery && !this.rtoRecovery) this.prr.onAck(delivered, this.pipe(), this.cc.ssthresh, this.smss);
    return acked;
  }

  /** SackSink: bytes a SACK newly covers mark the segments inside the client's range. */
  onNewlySacked(from: Seq, to: Seq, rangeStart: Seq, rangeEnd: Seq): void {
    this.log.markSacked(from, to, rangeStart, rangeEnd, this.rack, this.ackNow);
  }

  private advance(ack: Seq, rttSample: number | null, now: number): number {
    const acked = seqSub(ack, this.sndUna);
    const flightBefore = this.flightSize;
    this.queue.ackTo(ack);
    this.sndUna = ack;
    this.log.ackTo(ack, this.rack, now);
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
      } else if (!this.sackOk && this.log.count > 0 && !(this.log.flags[this.log.headId & this.log.mask] & SEG_RTX)) {
        // Partial ACK (RFC 6582 §3.2 step 5): the next segment is lost too; resend it now.
        this.dupAcks = 0;
        this.log.markLost(this.log.headId);
      }
    } else {
      this.dupAcks = 0;
      this.cc.onAck(acked, flightBefore, now, this.rtt.srtt);
    }
    // RFC 6298 §5.2 / §5.3; RFC 8985 §7.2 restarts the PTO on a cumulative ACK.
    this.rtoAt = this.sndUna === this.sndNxt ? null : now + this.rtt.rto;
    this.ptoRestart = true;
    return acked;
  }

  /** RFC 8985 §6.2 step 5, and the reordering timer for segments still inside the window. */
  private detectLoss(now: number): void {
    const reoWnd = this.rack.reoWnd(this.inRecovery, this.log.sackedSegs, this.rtt.srtt);
    const timeout = this.rack.detectLoss(this.log, reoWnd, now);
    this.reoAt = timeout > 0 ? now + timeout : null;
  }

  /** Fast recovery: one congestion response per round (RFC 6582 recover, RFC 6675 §5). */
  private enterRecovery(now: number): void {
    this.inRecovery = true;
    this.rtoRecovery = false;
    this.recoverPoint = this.sndNxt;
    this.stats.fastRecoveries++;
    this.cc.onEnterRecovery(this.flightSize, now);
    this.prr.start(this.flightSize);
    this.ptoAt = null;
    this.tlp.endSeq = null; // this recovery is the response to whatever the probe revealed
  }

  /** RFC 8985 §7.4.2: the probe repaired a loss the sender never saw; reduce cwnd once. */
  private onTlpRepairedLoss(now: number): void {
    if (this.inRecovery) return;
    this.cc.onEnterRecovery(Math.max(this.probeFlight, this.flightSize), now);
    this.cc.onExitRecovery(this.flightSize, now);
  }

  /** Bytes believed to be in the network: in flight - SACKed - lost + retransmitted (RFC 6675 §4 pipe). */
  pipe(): number {
    let p = this.flightSize - this.log.sackedBytes - this.log.lostBytes + this.log.rtxBytes;
    // Without SACK each duplicate ACK stands for one segment that left the network.
    if (!this.sackOk && this.inRecovery && !this.rtoRecovery) p -= this.dupAcks * this.smss;
    return Math.max(0, p);
  }

  /** Sends retransmissions, then new data, as cwnd, the peer's window and the queue allow. */
  output(now: number, sink: SegmentSink): void {
    if (this.flightSize === 0 && this.lastSendAt > 0 && now - this.lastSendAt > this.rtt.rto) this.cc.onIdleRestart(now);
    for (let guard = 0; guard < 100_000; guard++) {
      const pipe = this.pipe();
      const cwnd = this.cwnd;
      if (pipe < cwnd) {
        const id = this.log.nextLost();
        if (id >= 0) {
          this.retransmit(id, true, now, sink);
          continue;
        }
      }
      if (!this.sendNew(now, cwnd - pipe, sink)) break;
    }
    this.armTimers(now);
    const zeroWindowBlocked = this.sndWnd === 0 && this.flightSize === 0 && seqLt(this.sndNxt, this.queue.end);
    this.persist.update(zeroWindowBlocked, now, this.rtt.rto);
  }

  private retransmit(id: number, repair: boolean, now: number, sink: SegmentSink): void {
    const i = id & this.log.mask;
    const s = this.log.start[i] as Seq;
    const used = this.queue.emitAt(s, seqSub(this.log.end[i] as Seq, s), sink);
    this.log.retransmitted(id, now, repair);
    this.stats.retransmits++;
    this.timing = false; // Karn: no samples across a retransmission
    if (this.inRecovery) this.prr.onSend(used);
    this.afterSend(now);
  }

  /** Sends one new segment if `room` (cwnd - pipe, or unlimited for a probe) and the window allow. */
  private sendNew(now: number, room: number, sink: SegmentSink): boolean {
    if (!seqLt(this.sndNxt, this.queue.end)) return false;
    const availData = Math.max(0, seqSub(this.queue.dataEnd, this.sndNxt));
    const wndRoom = seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    const usable = Math.min(wndRoom, room);
    let len = Math.min(this.smss, availData, Math.max(0, usable));
    if (availData > 0) {
      if (len <= 0) return false;
      // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): no runt while data is in flight.
      if (len < this.smss && len < availData && this.flightSize > 0) return false;
    } else {
      // Only the FIN is left: it takes no window space, only congestion window.
      if (room <= 0 && this.flightSize > 0) return false;
      len = 0;
    }
    const s = this.sndNxt;
    const used = this.queue.emitAt(s, len, sink);
    if (!this.timing) {
      this.timing = true;
      this.timedSeq = s;
      this.timedAt = now;
    }
    this.sndNxt = seqAdd(s, used);
    this.log.append(s, this.sndNxt, now);
    this.stats.bytesOut += len;
    if (this.inRecovery) this.prr.onSend(used);
    this.ptoRestart = true;
    this.afterSend(now);
    return true;
  }

  private afterSend(now: number): void {
    this.lastSendAt = now;
    if (this.rtoAt === null) this.rtoAt = now + this.rtt.rto;
  }

  /** RFC 8985 §7.2: a loss probe replaces waiting for the RTO while nothing else would detect a tail loss. */
  private armTimers(now: number): void {
    if (this.flightSize === 0) {
      this.rtoAt = this.reoAt = this.ptoAt = null;
      return;
    }
    if (this.rtoAt === null) this.rtoAt = now + this.rtt.rto;
    if (!this.sackOk || this.inRecovery || this.tlp.endSeq !== null) {
      this.ptoAt = null;
    } else if (this.ptoRestart || this.ptoAt === null) {
      const pto = TailLossProbe.pto(this.rtt.srtt, this.rtt.hasSample, this.log.count === 1);
      this.ptoAt = Math.min(now + pto, this.rtoAt);
    }
    this.ptoRestart = false;
  }

  /**
   * The RTO, reordering or loss-probe timer expired (the earliest first).
   * Returns false when the flow should give up.
   */
  onRetransmitTimer(now: number, sink: SegmentSink): boolean {
    if (this.ptoAt !== null && this.ptoAt <= now) {
      this.ptoAt = null;
      this.sendProbe(now, sink);
      return true;
    }
    if (this.rtoAt !== null && this.rtoAt <= now) return this.onRtoExpired(now, sink);
    if (this.reoAt !== null && this.reoAt <= now) {
      this.reoAt = null;
      this.detectLoss(now);
      if (this.log.lostPending > 0 && !this.inRecovery) this.enterRecovery(now);
      if (this.inRecovery && !this.rtoRecovery) this.prr.onAck(0, this.pipe(), this.cc.ssthresh, this.smss);
      this.output(now, sink);
    }
    return true;
  }

  /** RFC 8985 §7.3: one segment of new data if the window allows, else the last segment again. */
  private sendProbe(now: number, sink: SegmentSink): void {
    if (this.log.count === 0) return;
    this.stats.lossProbes++;
    this.probeFlight = this.flightSize;
    const before = this.sndNxt;
    if (this.sendNew(now, Number.MAX_SAFE_INTEGER, sink)) {
      this.tlp.sent(this.sndNxt, false, before);
    } else {
      const id = this.log.tailId - 1;
      this.retransmit(id, false, now, sink);
      this.tlp.sent(this.sndNxt, true, this.log.start[id & this.log.mask] as Seq);
    }
    this.rtoAt = now + this.rtt.rto; // RFC 8985 §7.3: the RTO, not another PTO, follows a probe
    this.ptoRestart = false;
  }

  /**
   * Retransmission timer expired (RFC 6298 §5.4-5.6): back off, collapse
   * cwnd, and repair what RACK's RTO rule marks lost (RFC 8985 §6.3).
   * Returns false when the flow should give up.
   */
  onRtoExpired(now: number, sink: SegmentSink): boolean {
    this.rtoAt = this.reoAt = this.ptoAt = null;
    if (this.flightSize === 0) return true;
    if (++this.retries > MAX_RETRANSMITS) return false;
    // SND.UNA inside a SACKed range means the client reneged (RFC 2018 §8).
    if (this.scoreboard.covers(this.sndUna)) {
      this.scoreboard.clear();
      this.log.clearSacks();
    }
    this.stats.rtoExpirations++;
    // One reduction per round: not again for a recovery whose round is still open,
    // nor for a repeated timeout of the same data (RFC 5681 §3.1 implementation note).
    const newEvent = this.retries === 1 && !(this.inRecovery && seqLt(this.sndUna, this.recoverPoint));
    this.cc.onRto(this.flightSize - this.log.sackedBytes, now, newEvent);
    this.inRecovery = true;
    this.rtoRecovery = true;
    this.recoverPoint = this.sndNxt;
    this.dupAcks = 0;
    this.timing = false;
    this.tlp.endSeq = null;
    this.rtt.backoff();
    this.rack.markLossesOnRto(this.log, this.rack.reoWnd(true, this.log.sackedSegs, this.rtt.srtt), now);
    this.output(now, sink);
    this.rtoAt = now + this.rtt.rto;
    return true;
  }

  /** Persist timer expired (persist.ts): the caller sends a window probe. False after too many unanswered. */
  onPersistExpired(now: number): boolean {
    return this.persist.expired(now, this.rtt.rto);
  }
}
