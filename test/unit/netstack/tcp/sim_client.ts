// A minimal active-opener TCP used only by the loopback tests: enough of a
// client (go-back-N on timeout, fast retransmit, SACK reporting as Linux does
// it: the latest block first and D-SACK for duplicates, timestamps) to
// exercise the endpoint under loss, reordering and duplication.
import { ACK, FIN, RST, SYN, TcpOptions, TcpRepr } from '../../../../netstack/wire/tcp';

const MSS = 1360;
const RCV_WINDOW = 1 << 20;
const RCV_WS = 5;
const MAX_FLIGHT_SEGMENTS = 64;

export interface ClientConfig {
  isn: number;
  data: Buffer;
  sack: boolean;
  timestamps: boolean;
  windowScale: boolean;
}

export class SimClient {
  out: TcpRepr[] = [];
  state: 'SYN-SENT' | 'ESTABLISHED' | 'CLOSED' | 'RESET' = 'SYN-SENT';
  received: Buffer[] = [];
  finReceived = false;
  private rcvNxt = 0; // absolute seq
  private irs = 0;
  private ooo: Array<{ off: number; data: Buffer }> = [];
  /** offsets into data (SYN not counted); una/nxt count the FIN as data.length */
  private una = 0;
  private nxt = 0;
  private finAcked = false;
  private peerWnd = 0;
  private peerWs = 0;
  private peerMss = 536;
  private sackOk = false;
  private wsAgreed = false;
  private tsOk = false;
  private tsRecent = 0;
  private dupAcks = 0;
  private rtoAt: number | null = null;
  private rto = 300;
  private synAt = 0;

  constructor(private readonly cfg: ClientConfig) {}

  get done(): boolean {
    return this.finAcked && this.finReceived;
  }

  connect(now: number): void {
    this.synAt = now;
    this.sendSyn();
    this.rtoAt = now + 1000;
  }

  private sendSyn(): void {
    const options: TcpOptions = { mss: MSS };
    if (this.cfg.windowScale) options.windowScale = RCV_WS;
    if (this.cfg.sack) options.sackPermitted = true;
    if (this.cfg.timestamps) options.timestamp = { value: this.synAt >>> 0, echo: 0 };
    this.out.push(new TcpRepr({ srcPort: 40000, dstPort: 443, seq: this.cfg.isn >>> 0, ack: 0, flags: SYN, window: 65535,
      urgent: 0, options, payload: Buffer.alloc(0) }));
  }

  nextWakeAt(): number | null {
    return this.rtoAt;
  }

  onTimer(now: number): void {
    if (this.rtoAt === null || now < this.rtoAt) return;
    if (this.state === 'SYN-SENT') {
      this.sendSyn();
      this.rtoAt = now + 1000;
      return;
    }
    // Go-back-N from the first unacknowledged byte.
    this.nxt = this.una;
    this.rto = Math.min(this.rto * 2, 4000);
    this.rtoAt = null;
    this.pump(now);
  }

  onSegment(seg: TcpRepr, now: number): void {
    if (this.state === 'RESET' || this.state === 'CLOSED') return;
    if (seg.flags & RST) {
      this.state = 'RESET';
      return;
    }
    if (this.state === 'SYN-SENT') {
      if ((seg.flags & (SYN | ACK)) !== (SYN | ACK) || seg.ack !== ((this.cfg.isn + 1) >>> 0)) return;
      this.irs = seg.seq;
      this.rcvNxt = (seg.seq + 1) >>> 0;
      this.peerMss = seg.options.mss ?? 536;
      this.wsAgreed = seg.options.windowScale !== undefined && this.cfg.windowScale;
      this.peerWs = this.wsAgreed ? seg.options.windowScale ?? 0 : 0;
      this.sackOk = seg.options.sackPermitted === true && this.cfg.sack;
      this.tsOk = seg.options.timestamp !== undefined && this.cfg.timestamps;
      if (seg.options.timestamp) this.tsRecent = seg.options.timestamp.value;
      this.peerWnd = seg.window;
      this.state = 'ESTABLISHED';
      this.rtoAt = null;
      this.ack(now);
      this.pump(now);
      return;
    }
    if (seg.flags & SYN) return this.ack(now); // retransmitted SYN-ACK
    if (seg.options.timestamp) this.tsRecent = seg.options.timestamp.value;
    this.onAck(seg, now);
    if (seg.payload.length > 0 || seg.flags & FIN) {
      this.onData(seg);
      this.ack(now);
    }
    this.pump(now);
  }

  private onAck(seg: TcpRepr, now: number): void {
    const ackOff = ((seg.ack - this.cfg.isn - 1) >>> 0);
    this.peerWnd = seg.window * 2 ** this.peerWs;
    if (ackOff > this.una && ackOff <= this.cfg.data.length + 1) {
      this.una = ackOff;
      if (this.nxt < this.una) this.nxt = this.una;
      if (this.una === this.cfg.data.length + 1) this.finAcked = true;
      this.dupAcks = 0;
      this.rto = 300;
      this.rtoAt = this.una < this.nxt ? now + this.rto : null;
    } else if (ackOff === this.una && seg.payload.length === 0 && this.una < this.nxt && !(seg.flags & FIN)) {
      if (++this.dupAcks === 3) this.sendSegment(this.una, now);
    }
  }

  private onData(seg: TcpRepr): void {
    const off = (seg.seq - this.irs - 1) >>> 0;
    const cur = (this.rcvNxt - this.irs - 1) >>> 0;
    const end = off + seg.payload.length;
    // RFC 2883: report data received twice in the first block of the next ACK.
    this.dsack = null;
    if (seg.payload.length > 0 && (end <= cur || this.ooo.some((p) => p.off <= off && p.off + p.data.length >= end))) {
      this.dsack = [off, end];
    }
    this.latest = seg.payload.length > 0 && off > cur ? off : null;
    if (seg.payload.length > 0 && off + seg.payload.length > cur && off < cur + RCV_WINDOW) {
      this.ooo.push({ off, data: Buffer.from(seg.payload) });
    }
    this.finRel ??= seg.flags & FIN ? off + seg.payload.length : undefined;
    let progressed = true;
    while (progressed) {
      progressed = false;
      const c = (this.rcvNxt - this.irs - 1) >>> 0;
      for (let i = 0; i < this.ooo.length; i++) {
        const p = this.ooo[i];
        if (p.off <= c && p.off + p.data.length > c) {
          this.received.push(p.data.subarray(c - p.off));
          this.rcvNxt = (this.rcvNxt + p.off + p.data.length - c) >>> 0;
          this.ooo.splice(i, 1);
          progressed = true;
          break;
        }
        if (p.off + p.data.length <= c && p.data.length > 0) {
          this.ooo.splice(i, 1);
          progressed = true;
          break;
        }
      }
    }
    const c = (this.rcvNxt - this.irs - 1) >>> 0;
    if (!this.finReceived && this.finRel !== undefined && this.finRel === c) {
      this.finReceived = true;
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
    }
    this.ooo = this.ooo.filter((p) => p.data.length > 0 && p.off + p.data.length > c);
  }

  private finRel: number | undefined;
  /** duplicate data of the last segment (offsets), for a D-SACK */
  private dsack: [number, number] | null = null;
  /** offset of the last out-of-order segment: its block goes first (RFC 2018 §4) */
  private latest: number | null = null;

  private sackBlocks(): Array<[number, number]> {
    const sorted = [...this.ooo].sort((a, b) => a.off - b.off);
    const blocks: Array<[number, number]> = [];
    for (const p of sorted) {
      const last = blocks.at(-1);
      if (last && p.off <= last[1]) last[1] = Math.max(last[1], p.off + p.data.length);
      else blocks.push([p.off, p.off + p.data.length]);
    }
    const latest = this.latest;
    const first = latest === null ? -1 : blocks.findIndex(([l, r]) => l <= latest && latest < r);
    if (first > 0) blocks.unshift(...blocks.splice(first, 1));
    if (this.dsack !== null) blocks.unshift(this.dsack);
    const base = this.irs + 1;
    return blocks.slice(0, 3).map(([l, r]) => [(base + l) >>> 0, (base + r) >>> 0]);
  }

  private ack(now: number): void {
    this.emit(this.nxtSeq(this.nxt), ACK, Buffer.alloc(0), now);
  }

  private nxtSeq(off: number): number {
    return (this.cfg.isn + 1 + off) >>> 0;
  }

  private pump(now: number): void {
    if (this.state !== 'ESTABLISHED') return;
    const end = this.cfg.data.length + 1; // + FIN
    const mss = Math.min(this.peerMss, MSS) - (this.tsOk ? 12 : 0);
    for (let i = 0; i < 1000 && this.nxt < end; i++) {
      const flight = this.nxt - this.una;
      const room = Math.min(this.peerWnd, MAX_FLIGHT_SEGMENTS * mss) - flight;
      if (this.nxt < this.cfg.data.length && room <= 0) break;
      const len = this.sendSegment(this.nxt, now, Math.max(1, Math.min(mss, room)));
      this.nxt += len;
    }
  }

  /** Sends from offset `off`; returns sequence space used. */
  private sendSegment(off: number, now: number, max = 1 << 30): number {
    const mss = Math.min(this.peerMss, MSS) - (this.tsOk ? 12 : 0);
    const len = Math.min(mss, max, this.cfg.data.length - off);
    const payload = len > 0 ? this.cfg.data.subarray(off, off + len) : Buffer.alloc(0);
    const fin = off + len === this.cfg.data.length;
    this.emit(this.nxtSeq(off), ACK | (fin ? FIN : 0), payload, now);
    if (this.rtoAt === null) this.rtoAt = now + this.rto;
    return len + (fin ? 1 : 0);
  }

  private emit(seq: number, flags: number, payload: Buffer, now: number): void {
    const options: TcpOptions = {};
    if (this.tsOk) options.timestamp = { value: now >>> 0, echo: this.tsRecent };
    if (this.sackOk && (this.ooo.length > 0 || this.dsack !== null)) options.sack = this.sackBlocks();
    this.dsack = null;
    this.out.push(new TcpRepr({ srcPort: 40000, dstPort: 443, seq, ack: this.rcvNxt, flags, urgent: 0, options, payload,
      window: Math.min(65535, RCV_WINDOW >> (this.wsAgreed ? RCV_WS : 0)) }));
  }
}
