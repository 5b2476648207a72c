// What one endpoint sends: every segment it emits is built here, with the
// current ACK, window, timestamps and SACK blocks (RFC 9293 §3.8.6, RFC 7323,
// RFC 2018), when received data is acknowledged (RFC 9293 §3.8.6.3, RFC 5681
// §4.2), and the ACK state that sending a segment clears.
import { ACK, RST, SYN, TcpOptions, TcpRepr } from '../wire/tcp';
import { MAX_WINDOW_FIELD, Negotiated } from './options';
import { DELAYED_ACK_MS } from './config';
import { DATA_DUPLICATE, DATA_FILLED_HOLE, DATA_FIN, DATA_NEW, DATA_OUT_OF_ORDER, DATA_REFUSED, Receiver } from './receiver';
import { Seq, seqAdd } from './seq';
import { TcpStats, TimerSet } from './timers';
import { Timestamps } from './timestamps';

const NO_DATA = Buffer.alloc(0);

export class Transmitter {
  private out: TcpRepr[] = [];
  /** RCV.NXT as carried by the last segment sent. */
  lastAckSent: Seq;
  /** An ACK is owed now rather than after the delayed-ACK timer. */
  ackPending = false;
  /** Segments with new data since our last ACK (RFC 5681 §4.2: ACK every second). */
  unackedSegments = 0;
  /** The every-second-segment ACK is owed but held for the end of the receive batch. */
  ackOwed = false;

  constructor(
    private readonly srcPort: number,
    private readonly dstPort: number,
    private readonly neg: Negotiated,
    private readonly rcv: Receiver,
    private readonly ts: Timestamps,
    private readonly timers: TimerSet,
    private readonly stats: TcpStats,
  ) {
    this.lastAckSent = rcv.rcvNxt;
  }

  drain(): TcpRepr[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  /**
   * Received text or FIN was handled with result `r` (Receiver.onData flags).
   * Out-of-order, duplicate and hole-filling data and a FIN are ACKed at once;
   * otherwise every second full segment or after DELAYED_ACK_MS. The ACK rides
   * on data if the endpoint's flush sends any, else it goes alone. `inBatch`:
   * one ACK at the end of the receive batch (sendOwedAck) covers all its
   * in-order segments, as Linux ACKs a GRO batch; the delayed-ACK timer stays
   * armed in case the end never comes.
   */
  dataReceived(r: number, inBatch: boolean, now: number): void {
    if (r & DATA_NEW) this.unackedSegments++;
    const immediate = (r & (DATA_OUT_OF_ORDER | DATA_DUPLICATE | DATA_FIN | DATA_FILLED_HOLE | DATA_REFUSED)) !== 0
      || (r & DATA_NEW) === 0;
    if (immediate || (this.unackedSegments >= 2 && !inBatch)) {
      this.ackPending = true;
    } else {
      if (this.unackedSegments >= 2) this.ackOwed = true;
      this.timers.delackAt(now + DELAYED_ACK_MS);
    }
  }

  /** A segment built elsewhere (the reset of a closed flow), queued as it is and not counted. */
  queue(seg: TcpRepr): void {
    this.out.push(seg);
  }

  synAck(iss: Seq, mss: number, now: number): void {
    const options: TcpOptions = { mss };
    if (this.neg.wsOk) options.windowScale = this.neg.rcvWscale;
    if (this.neg.sackOk) options.sackPermitted = true;
    if (this.neg.tsOk) options.timestamp = this.ts.option(now);
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    const window = Math.min(this.rcv.capacity, MAX_WINDOW_FIELD);
    this.rcv.rcvAdvRight = seqAdd(this.rcv.rcvNxt, window);
    this.out.push(new TcpRepr({ srcPort: this.srcPort, dstPort: this.dstPort, seq: iss, ack: this.rcv.rcvNxt,
      flags: SYN | ACK, window, urgent: 0, options, payload: NO_DATA }));
    this.stats.segmentsOut++;
  }

  /** A data, FIN or bare ACK segment at `seq`; it acknowledges everything received so far. */
  segment(seq: Seq, flags: number, payload: Buffer, now: number): void {
    const options: TcpOptions = {};
    if (this.neg.tsOk) options.timestamp = this.ts.option(now);
    if (this.neg.sackOk && !this.rcv.ooo.isEmpty) options.sack = this.rcv.ooo.sackBlocks(this.neg.tsOk ? 3 : 4);
    const window = this.rcv.advertise();
    this.out.push(new TcpRepr({ srcPort: this.srcPort, dstPort: this.dstPort, seq, ack: this.rcv.rcvNxt, flags, window,
      urgent: 0, options, payload }));
    this.stats.segmentsOut++;
    this.lastAckSent = this.rcv.rcvNxt;
    this.ackPending = false;
    this.ackOwed = false;
    this.unackedSegments = 0;
    this.timers.delackAt(null);
  }

  rst(seq: Seq, ack: Seq, withAck: boolean): void {
    this.out.push(new TcpRepr({ srcPort: this.srcPort, dstPort: this.dstPort, seq, ack: withAck ? ack : 0,
      flags: withAck ? RST | ACK : RST, window: 0, urgent: 0, options: {}, payload: NO_DATA }));
    this.stats.segmentsOut++;
  }
}
