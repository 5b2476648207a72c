// One terminated TCP flow, passive side (RFC 9293 §3.3.2 state machine). The
// SYN is held until the edge knows whether the upstream connect succeeded:
// accept() answers SYN-ACK, refuse() answers RST, so a client never sees an
// open connection to a destination that is down.
// Beside it: which segments are acceptable (acceptance.ts), RFC 7323
// timestamps (timestamps.ts), what is sent (transmit.ts), the send side
// (sender.ts) and the receive side (receiver.ts).
import { randomBytes } from 'node:crypto';
import { ACK, FIN, PSH, RST, SYN, TcpRepr } from '../wire/tcp';
import { ChallengeAckLimiter, ackTooOld, rstAction, segmentAcceptable } from './acceptance';
import { NewReno } from './congestion';
import { DEFAULT_RECV_BUFFER_BYTES, SYNACK_RETRIES, TcpEndpointOptions } from './config';
import { MAX_WINDOW_FIELD, Negotiated, negotiate, rstForUnknownSegment, segmentLength } from './options';
import { DATA_FIN, DATA_NEW, Receiver } from './receiver';
import { INITIAL_RTO_MS, RttEstimator } from './retransmit';
import { DEFAULT_SEND_BUFFER_BYTES, SendBuffer } from './send_buffer';
import { SegmentSink } from './send_queue';
import { Sender } from './sender';
import { Seq, asSeq, seqAdd, seqGt } from './seq';
import { TcpEvent, TcpState, TcpStats, TimerSet, closeReason, newStats } from './timers';
import { Timestamps } from './timestamps';
import { Transmitter } from './transmit';

export type { TcpEvent, TcpState, TcpStats } from './timers';
export type { TcpEndpointOptions, TcpOutput } from './config';

const NO_DATA = Buffer.alloc(0);

export class TcpEndpoint implements SegmentSink {
  private st: TcpState = 'PENDING';
  readonly stats: TcpStats = newStats();
  private readonly neg: Negotiated;
  private readonly rcv: Receiver;
  private readonly snd: Sender;
  private readonly timers: TimerSet;
  private readonly iss: Seq;
  private readonly irs: Seq;
  private readonly ts: Timestamps;
  private readonly tx: Transmitter;
  private events: TcpEvent[] = [];
  private readablePending = false;
  private writeBlocked = false;
  private lastNow: number;
  private synAckRetries = 0;
  private readonly challenges = new ChallengeAckLimiter();
  /** The segment being processed is part of a receive batch (see onSegment). */
  private inBatch = false;

  private constructor(syn: TcpRepr, now: number, private readonly opts: TcpEndpointOptions) {
    this.irs = asSeq(syn.seq);
    this.iss = asSeq(opts.isn ?? randomBytes(4).readUInt32BE(0));
    const tsOffset = opts.tsOffset ?? randomBytes(4).readUInt32BE(0);
    const recvBytes = opts.recvBufferBytes ?? DEFAULT_RECV_BUFFER_BYTES;
    this.neg = negotiate(syn.options, opts.mss, recvBytes);
    this.ts = new Timestamps(this.neg.tsOk, tsOffset);
    const maxWindow = this.neg.wsOk ? MAX_WINDOW_FIELD * 2 ** this.neg.rcvWscale : MAX_WINDOW_FIELD;
    this.rcv = new Receiver(this.irs, recvBytes, this.neg.rcvWscale, this.neg.recvMss, maxWindow, opts.room);
    const rtt = new RttEstimator(opts.initialRtoMs ?? INITIAL_RTO_MS);
    const cc = (opts.congestion ?? ((m: number) => new NewReno(m)))(this.neg.sendMss);
    const buf = new SendBuffer(opts.sendBufferBytes ?? DEFAULT_SEND_BUFFER_BYTES, opts.sendChunks);
    this.snd = new Sender(this.iss, buf, this.neg.sendMss, this.neg.sndWscale, this.neg.sackOk, rtt, cc, this.stats);
    this.snd.initWindow(syn.window, this.irs, this.iss);
    if (syn.options.timestamp !== undefined) this.ts.recent = syn.options.timestamp.value;
    this.lastNow = now;
    this.timers = new TimerSet(opts, now);
    this.tx = new Transmitter(syn.dstPort, syn.srcPort, this.neg, this.rcv, this.ts, this.timers, this.stats);
  }

  /** A flow from the client's SYN, waiting for accept()/refuse(); emits nothing yet. */
  static fromSyn(syn: TcpRepr, now: number, opts: TcpEndpointOptions): TcpEndpoint {
    return new TcpEndpoint(syn, now, opts);
  }

  get state(): TcpState {
    return this.st;
  }

  /** Effective send MSS and negotiated options, for logs and tests. */
  get negotiated(): Readonly<Negotiated> {
    return this.neg;
  }

  get cwnd(): number {
    return this.snd.cwnd;
  }

  get srtt(): number {
    return this.snd.rtt.srtt;
  }

  /** Bytes this flow holds: in-order and out-of-order received data, and the send queue's chunks (buffer budgets). */
  get heldBytes(): number {
    return this.rcv.buffered + this.rcv.ooo.memory + this.snd.queue.buf.memory;
  }

  /** Bytes of client data not taken for lack of buffer room or reassembly space, by reason. */
  get refusedBytes(): { budget: number; oooCapacity: number; oooPieces: number } {
    const r = this.rcv.ooo.refused;
    return { budget: this.rcv.refusedBytes + r.budget, oooCapacity: r.bytes, oooPieces: r.pieces };
  }

  /** Buffer room came back: tell the client at once if the window can open again. */
  windowUpdate(now: number): void {
    if (!this.synchronized() || this.rcv.finReceived || this.rcv.proposedWindow() <= this.rcv.window) return;
    this.lastNow = now;
    this.sendAck(now);
  }

  /**
   * Whether a new SYN for this 4-tuple may replace this flow: it is closed, or
   * in TIME-WAIT with the SYN above RCV.NXT and, with timestamps, a newer
   * TSval (RFC 9293 §3.10.7.4 note, RFC 6191). The flow table then drops this
   * endpoint and creates a new one with fromSyn().
   */
  acceptsNewSyn(syn: TcpRepr): boolean {
    if (this.st === 'CLOSED') return true;
    if (this.st !== 'TIME-WAIT' || !seqGt(asSeq(syn.seq), this.rcv.rcvNxt)) return false;
    const ts = syn.options.timestamp;
    return !this.ts.enabled || ts === undefined || this.ts.isNewer(ts);
  }

  /** Upstream connect succeeded: answer the SYN. */
  accept(now: number): void {
    if (this.st !== 'PENDING') return;
    this.lastNow = now;
    this.st = 'SYN-RECEIVED';
    this.sendSynAck(now);
  }

  /** Upstream connect failed: reset the client (RFC 9293 §3.10.7.1 for its SYN). */
  refuse(now: number): void {
    if (this.st !== 'PENDING') return;
    this.lastNow = now;
    this.tx.rst(0 as Seq, seqAdd(this.irs, 1), true);
    this.close('refused');
  }

  abort(now: number): void {
    if (this.st === 'CLOSED') return;
    this.lastNow = now;
    if (this.st === 'PENDING') this.tx.rst(0 as Seq, seqAdd(this.irs, 1), true);
    else if (this.st !== 'TIME-WAIT') this.tx.rst(this.snd.sndNxt, this.rcv.rcvNxt, true);
    this.close('aborted');
  }

  /** Bytes write() may take while the send queue grows by at most `room` bytes of memory (its capacity aside). */
  writableWithin(room: number): number {
    return this.snd.queue.buf.fitsIn(room);
  }

  /** Queues bytes to send (copied) and returns how many were taken: fewer while the send queue is full. */
  write(data: Buffer, now: number): number {
    if (this.snd.queue.finQueued || !this.canSend()) return 0;
    this.lastNow = now;
    const n = this.snd.queue.buf.push(data);
    if (n < data.length) this.writeBlocked = true;
    this.timers.activity(now);
    if (n > 0 && this.synchronized()) this.flush(now);
    return n;
  }

  read(max?: number): Buffer | null {
    const before = this.rcv.window;
    const b = this.rcv.read(max);
    if (b === null) return null;
    this.readablePending = false;
    // Window update when the window at least doubled (covers reopening a zero window).
    const proposed = this.rcv.proposedWindow();
    if (this.synchronized() && !this.rcv.finReceived && proposed > before && proposed >= 2 * before) {
      this.sendAck(this.lastNow);
    }
    return b;
  }

  shutdownWrite(now: number): void {
    if (this.snd.queue.finQueued || !this.canSend()) return;
    this.lastNow = now;
    this.snd.queue.queueFin();
    if (this.st === 'ESTABLISHED') this.st = 'FIN-WAIT-1';
    else if (this.st === 'CLOSE-WAIT') this.st = 'LAST-ACK';
    if (this.synchronized()) this.flush(now);
  }

  drainOutput(): TcpRepr[] {
    return this.tx.drain();
  }

  drainEvents(): TcpEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  nextWakeAt(): number | null {
    return this.timers.next(this.snd, this.st);
  }

  onTimer(now: number): void {
    this.lastNow = now;
    const due = this.timers.due(now, this.snd, this.st);
    if (due === 'none') return;
    if (due === 'time_wait') return this.close('fin');
    if (due === 'idle' || due === 'keepalive_dead') return this.timeout();
    if (due === 'keepalive') return this.sendProbe(now);
    if (due === 'delack') {
      this.sendAck(now);
    } else if (due === 'rtx') {
      if (this.st === 'SYN-RECEIVED') {
        if (++this.synAckRetries > SYNACK_RETRIES) return this.close('timeout');
        this.snd.rtt.backoff();
        this.stats.retransmits++;
        this.snd.rtoAt = null;
        this.sendSynAck(now);
      } else if (!this.snd.onRetransmitTimer(now, this)) {
        return this.timeout();
      }
    } else if (due === 'persist') {
      if (!this.snd.onPersistExpired(now)) return this.timeout();
      this.sendProbe(now);
    }
    this.onTimer(now); // more than one timer may be due
  }

  /**
   * One segment from the client. `inBatch`: more segments of the same
   * receive batch may follow, and the caller calls sendOwedAck() once the
   * batch is done, so the ACK owed for every second segment may wait for it.
   */
  onSegment(seg: TcpRepr, now: number, inBatch = false): void {
    this.inBatch = inBatch;
    this.lastNow = now;
    this.stats.segmentsIn++;
    if (this.st === 'CLOSED') {
      const rst = rstForUnknownSegment(seg);
      if (rst !== null) this.tx.queue(rst);
      return;
    }
    const seq = asSeq(seg.seq);
    if (this.st === 'PENDING') return this.onSegmentPending(seg, seq);
    if (seg.flags & SYN && seq === this.irs && this.st === 'SYN-RECEIVED') {
      return this.sendSynAck(now); // our SYN-ACK was lost: the client repeats its SYN
    }
    const ts = this.ts.of(seg.options);
    if (ts !== undefined && !(seg.flags & RST) && this.ts.isOld(ts)) return this.sendAck(now); // PAWS
    const len = segmentLength(seg);
    if (seg.flags & RST) return this.onRst(seq, now);
    if (!segmentAcceptable(seq, len, this.rcv.rcvNxt, this.rcv.window)) {
      // A repeated FIN in TIME-WAIT means our last ACK was lost (RFC 9293 §3.10.7.4 eighth).
      if (this.st === 'TIME-WAIT' && seg.flags & FIN) this.timers.restartTimeWait(now);
      return this.sendAck(now);
    }
    this.timers.received(now);
    this.ts.update(ts, seq, this.tx.lastAckSent);
    if (seg.flags & SYN) return this.challengeAck(now); // RFC 5961 §4
    if (!(seg.flags & ACK)) return;
    if (!this.processAck(seg, seq, now)) return;
    this.processText(seg, seq, now);
    if (this.synchronized()) this.flush(now);
  }

  private onSegmentPending(seg: TcpRepr, seq: Seq): void {
    // Nothing was sent yet: only a RST from the client's side of this SYN matters.
    if (seg.flags & RST && seq === this.rcv.rcvNxt) this.close('rst_received');
  }

  private onRst(seq: Seq, now: number): void {
    const action = rstAction(seq, this.rcv.rcvNxt, this.rcv.window);
    if (action === 'reset') this.close('rst_received');
    else if (action === 'challenge') this.challengeAck(now);
  }

  private challengeAck(now: number): void {
    if (!this.challenges.allow(now)) return;
    this.stats.challengeAcks++;
    this.sendAck(now);
  }

  /** RFC 9293 §3.10.7.4 fifth: returns false when the segment must be dropped. */
  private processAck(seg: TcpRepr, seq: Seq, now: number): boolean {
    const ack = asSeq(seg.ack);
    if (this.st === 'SYN-RECEIVED') {
      if (ack !== this.snd.sndNxt) {
        this.tx.rst(ack, 0 as Seq, false);
        return false;
      }
      this.st = 'ESTABLISHED';
      this.events.push({ type: 'established' });
      if (this.snd.queue.finQueued) this.st = 'FIN-WAIT-1';
    }
    if (ackTooOld(ack, this.snd.sndUna, this.snd.sndWnd)) {
      this.challengeAck(now);
      return false;
    }
    const rtt = this.ts.rttSample(this.ts.of(seg.options), now);
    const dupCandidate = seg.payload.length === 0 && !(seg.flags & FIN);
    const freeBefore = this.snd.queue.buf.free;
    const acked = this.snd.onAck(seq, ack, seg.window, seg.options.sack, dupCandidate, rtt, now);
    if (acked < 0) {
      this.sendAck(now); // acknowledges something not yet sent
      return false;
    }
    if (this.writeBlocked && this.snd.queue.buf.free > freeBefore && this.snd.queue.buf.free >= this.snd.queue.buf.capacity / 4) {
      this.writeBlocked = false;
      this.events.push({ type: 'writable' });
    }
    if (this.snd.finAcked) {
      if (this.st === 'FIN-WAIT-1') this.st = 'FIN-WAIT-2';
      else if (this.st === 'CLOSING') this.enterTimeWait(now);
      else if (this.st === 'LAST-ACK') {
        this.close('fin');
        return false;
      }
    }
    return true;
  }

  /** RFC 9293 §3.10.7.4 seventh and eighth: segment text and FIN. */
  private processText(seg: TcpRepr, seq: Seq, now: number): void {
    const fin = (seg.flags & FIN) !== 0;
    if (seg.payload.length === 0 && !fin) return;
    if (this.st === 'TIME-WAIT') {
      if (fin) this.timers.restartTimeWait(now); // retransmitted FIN: our ACK was lost
      return this.sendAck(now);
    }
    if (this.rcv.finReceived) return this.sendAck(now);
    const queuedBefore = this.rcv.buffered;
    const r = this.rcv.onData(seq, seg.payload, fin);
    if (r & DATA_NEW) {
      this.stats.bytesIn += this.rcv.buffered - queuedBefore;
      if (!this.readablePending) {
        this.readablePending = true;
        this.events.push({ type: 'readable' });
      }
    }
    if (r & DATA_FIN) {
      this.events.push({ type: 'peer_fin' });
      if (this.st === 'ESTABLISHED') this.st = 'CLOSE-WAIT';
      else if (this.st === 'FIN-WAIT-1') this.st = 'CLOSING';
      else if (this.st === 'FIN-WAIT-2') this.enterTimeWait(now);
    }
    this.tx.dataReceived(r, this.inBatch, now);
  }

  /** An ACK held for the end of a receive batch (see onSegment). */
  get ackOwed(): boolean {
    return this.tx.ackOwed;
  }

  /** The receive batch ended: send the ACK held for it, unless a segment since carried it. */
  sendOwedAck(now: number): void {
    this.inBatch = false;
    if (!this.tx.ackOwed || !this.synchronized()) return;
    this.lastNow = now;
    this.sendAck(now);
  }

  private flush(now: number): void {
    if (this.st !== 'TIME-WAIT') this.snd.output(now, this);
    if (this.tx.ackPending) this.sendAck(now);
  }

  /** SegmentSink: called by the Sender for every data/FIN segment. */
  emitData(seq: Seq, payload: Buffer, fin: boolean, push: boolean): void {
    const flags = ACK | (fin ? FIN : 0) | (push ? PSH : 0);
    this.tx.segment(seq, flags, payload, this.lastNow);
  }

  private sendAck(now: number): void {
    this.tx.segment(this.snd.sndNxt, ACK, NO_DATA, now);
  }

  /** Keepalive or zero-window probe: SEG.SEQ = SND.UNA - 1 draws an ACK (RFC 9293 §3.8.4). */
  private sendProbe(now: number): void {
    this.tx.segment(seqAdd(this.snd.sndUna, -1), ACK, NO_DATA, now);
  }

  private sendSynAck(now: number): void {
    this.tx.synAck(this.iss, this.opts.mss, now);
    if (this.snd.rtoAt === null) this.snd.rtoAt = now + this.snd.rtt.rto;
  }

  private enterTimeWait(now: number): void {
    this.st = 'TIME-WAIT';
    this.snd.stopTimers();
    this.timers.startTimeWait(now);
  }

  private timeout(): void {
    if (this.st !== 'SYN-RECEIVED') this.tx.rst(this.snd.sndNxt, this.rcv.rcvNxt, true);
    this.close('timeout');
  }

  private close(reason: closeReason): void {
    this.st = 'CLOSED';
    this.snd.stopTimers();
    this.timers.clear();
    this.events.push({ type: 'closed', reason });
  }

  private synchronized(): boolean {
    return this.st !== 'PENDING' && this.st !== 'SYN-RECEIVED' && this.st !== 'CLOSED';
  }

  private canSend(): boolean {
    return this.st === 'PENDING' || this.st === 'SYN-RECEIVED' || this.st === 'ESTABLISHED' || this.st === 'CLOSE-WAIT';
  }
}
