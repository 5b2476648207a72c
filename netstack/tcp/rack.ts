// RACK-TLP loss detection (RFC 8985): a segment is lost when a segment sent
// after it was delivered and a reordering window has passed since it was
// sent, and a tail loss draws a probe after PTO instead of waiting for the RTO.
import { DeliveryObserver, SEG_EVER_RETRANS, SEG_LOST, SEG_RTX, SEG_SACKED, SegmentLog } from './segment_log';
import { Seq, seqGeq, seqGt, seqLt } from './seq';

/** RFC 5681 §3.2 DupThresh, also RACK's threshold before reordering is seen (RFC 8985 §6.2 step 4). */
export const DUP_THRESH = 3;
/** RFC 8985 §6.2 step 4: rounds a grown reo_wnd persists after the last D-SACK. */
export const REO_WND_PERSIST = 16;
/** RFC 8985 §7.2 WCDelAckT: worst-case delayed ACK when a single segment is in flight. */
export const WC_DEL_ACK_T_MS = 200;
/** Added to 2*SRTT when more than one segment is in flight (Linux TCP_TIMEOUT_MIN). */
export const PTO_SLACK_MS = 2;
/** RFC 8985 §7.2: PTO before any RTT sample. */
export const INITIAL_PTO_MS = 1000;

/** RFC 8985 §6.2 RACK_sent_after */
function sentAfter(t1: number, seq1: Seq, t2: number, seq2: Seq): boolean {
  return t1 > t2 || (t1 === t2 && seqGt(seq1, seq2));
}

export class Rack implements DeliveryObserver {
  /** RACK.xmit_ts / RACK.end_seq: the most recently sent segment known delivered */
  xmitTs = -Infinity;
  endSeq = 0 as Seq;
  /** RACK.rtt: RTT of that segment */
  rtt = 0;
  /** RACK.min_RTT (over the connection; Linux keeps a windowed minimum) */
  minRtt = Infinity;
  /** RACK.fack: highest end_seq delivered */
  private fack: Seq | null = null;
  /** RACK.fack before the current ACK: blocks of one ACK may come in any order */
  private fackBefore: Seq | null = null;
  reorderingSeen = false;
  reoWndMult = 1;
  private reoWndPersist = 0;
  private dsackRound: Seq | null = null;

  /** RFC 8985 §6.2 steps 1-3 for one newly ACKed or SACKed segment. */
  onDelivered(xmitTs: number, endSeq: Seq, everRetransmitted: boolean, now: number): void {
    const rtt = now - xmitTs;
    // A retransmitted segment ACKed sooner than the minimum RTT was the original's ACK.
    if (!(everRetransmitted && !(rtt >= this.minRtt))) {
      if (!everRetransmitted && rtt < this.minRtt) this.minRtt = rtt;
      if (sentAfter(xmitTs, endSeq, this.xmitTs, this.endSeq)) {
        this.rtt = rtt;
        this.xmitTs = xmitTs;
        this.endSeq = endSeq;
      }
    }
    if (this.fack === null || seqGt(endSeq, this.fack)) this.fack = endSeq;
    if (this.fackBefore !== null && seqLt(endSeq, this.fackBefore) && !everRetransmitted) this.reorderingSeen = true;
  }

  /** Called before the SACK blocks and cumulative ACK of each incoming ACK are applied. */
  beginAck(): void {
    this.fackBefore = this.fack;
  }

  /** RFC 8985 §6.2 step 4: grow reo_wnd once per round with D-SACKs, decay after recoveries. */
  updateReoWnd(dsack: boolean, sndUna: Seq, sndNxt: Seq, exitedRecovery: boolean): void {
    if (this.dsackRound !== null && seqGeq(sndUna, this.dsackRound)) this.dsackRound = null;
    if (dsack) this.reorderingSeen = true; // a spurious retransmission: reordering fooled us
    if (this.dsackRound === null && dsack) {
      this.dsackRound = sndNxt;
      this.reoWndMult++;
      this.reoWndPersist = REO_WND_PERSIST;
    } else if (exitedRecovery && --this.reoWndPersist <= 0) {
      this.reoWndMult = 1;
    }
  }

  /** RACK.reo_wnd (RFC 8985 §6.2 step 4). */
  reoWnd(inRecovery: boolean, sackedSegs: number, srtt: number): number {
    // Until reordering is seen, behave like DupThresh: no extra wait.
    if (!this.reorderingSeen && (inRecovery || sackedSegs >= DUP_THRESH)) return 0;
    if (this.minRtt === Infinity) return 0;
    return Math.min((this.reoWndMult * this.minRtt) / 4, Math.max(srtt, this.minRtt));
  }

  /**
   * RFC 8985 §6.2 step 5: marks segments sent before RACK.xmit_ts and older
   * than RACK.rtt + reo_wnd as lost. Returns the time until the next one
   * would expire (for the reordering timer), or 0.
   */
  detectLoss(log: SegmentLog, reoWnd: number, now: number): number {
    let timeout = 0;
    for (let id = log.headId; id < log.tailId; id++) {
      const i = id & log.mask;
      const f = log.flags[i];
      if (f & SEG_SACKED || (f & (SEG_LOST | SEG_RTX)) === SEG_LOST) continue;
      const ts = log.xmitTs[i];
      if (!sentAfter(this.xmitTs, this.endSeq, ts, log.end[i] as Seq)) {
        // Later entries that were never resent went out later still.
        if ((f & SEG_EVER_RETRANS) === 0) break;
        continue;
      }
      const remaining = ts + this.rtt + reoWnd - now;
      if (remaining <= 0) log.markLost(id);
      else if (remaining > timeout) timeout = remaining;
    }
    return timeout;
  }

  /** RFC 8985 §6.3: on RTO the first unacknowledged segment and all sent long enough ago are lost. */
  markLossesOnRto(log: SegmentLog, reoWnd: number, now: number): void {
    let first = true;
    for (let id = log.headId; id < log.tailId; id++) {
      const i = id & log.mask;
      if (log.flags[i] & SEG_SACKED) continue;
      if (first || log.xmitTs[i] + this.rtt + reoWnd <= now) log.markLost(id);
      first = false;
    }
  }
}

/** TLP state (RFC 8985 §7): at most one probe outstanding. */
export class TailLossProbe {
  /** TLP.end_seq: SND.NXT when the probe was sent, or null */
  endSeq: Seq | null = null;
  /** TLP.is_retrans */
  isRetrans = false;
  /** start of the retransmitted probe segment (to match its D-SACK) */
  probeStart = 0 as Seq;

  /** RFC 8985 §7.2 PTO, before clamping to the RTO. */
  static pto(srtt: number, hasSrtt: boolean, oneSegmentInFlight: boolean): number {
    if (!hasSrtt) return INITIAL_PTO_MS;
    return 2 * srtt + (oneSegmentInFlight ? WC_DEL_ACK_T_MS : PTO_SLACK_MS);
  }

  sent(sndNxt: Seq, isRetrans: boolean, probeStart: Seq): void {
    this.endSeq = sndNxt;
    this.isRetrans = isRetrans;
    this.probeStart = probeStart;
  }

  /**
   * RFC 8985 §7.4: whether this ACK shows that the probe repaired a loss
   * (the sender then reduces cwnd once). `dsackStart` is the first D-SACK
   * block's start or null; `pureDup` an ACK that delivered nothing new.
   */
  onAck(ack: Seq, dsackStart: Seq | null, pureDup: boolean): boolean {
    const end = this.endSeq;
    if (end === null || seqLt(ack, end)) return false;
    if (!this.isRetrans) {
      this.endSeq = null; // a probe of new data: nothing to infer
      return false;
    }
    if (dsackStart !== null && seqGeq(dsackStart, this.probeStart) && seqLt(dsackStart, end)) {
      this.endSeq = null; // both the original and the probe arrived
      return false;
    }
    if (seqGt(ack, end)) {
      this.endSeq = null; // no D-SACK for the probe: the original was lost
      return true;
    }
    if (pureDup) this.endSeq = null; // a duplicate at the probe's end: both arrived
    return false;
  }
}
