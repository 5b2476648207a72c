// The send queue in sequence space: the bytes the application wrote from
// SND.UNA on (held in a SendBuffer), then the FIN once it is queued (RFC 9293
// §3.6), and how one segment is cut from them.
import { SendBuffer } from './send_buffer';
import { Seq, seqAdd, seqGt, seqSub } from './seq';

export interface SegmentSink {
  /** Emit a data/FIN segment at `seq` carrying the current ACK and window. */
  emitData(seq: Seq, payload: Buffer, fin: boolean, push: boolean): void;
}

export class SendQueue {
  /** sequence number of the first byte in `buf` */
  private bufSeq: Seq;
  finQueued = false;
  finSeq = 0 as Seq;

  constructor(readonly buf: SendBuffer, start: Seq) {
    this.bufSeq = start;
  }

  /** Sequence number just past the queued data. */
  get dataEnd(): Seq {
    return seqAdd(this.bufSeq, this.buf.length);
  }

  /** Sequence number just past everything queued (data, then FIN). */
  get end(): Seq {
    const dataEnd = this.dataEnd;
    return this.finQueued ? seqAdd(dataEnd, 1) : dataEnd;
  }

  queueFin(): void {
    if (this.finQueued) return;
    this.finSeq = seqAdd(this.bufSeq, this.buf.length);
    this.finQueued = true;
  }

  /** Releases the bytes below `ack`, which the client now holds. */
  ackTo(ack: Seq): void {
    if (seqGt(ack, this.bufSeq)) {
      const n = Math.min(seqSub(ack, this.bufSeq), this.buf.length);
      this.buf.consume(n);
      this.bufSeq = seqAdd(this.bufSeq, n);
    }
  }

  /** Emits [s, s+len) plus the FIN if it directly follows; returns sequence space used. */
  emitAt(s: Seq, len: number, sink: SegmentSink): number {
    const off = seqSub(s, this.bufSeq);
    const dataLen = Math.max(0, Math.min(len, this.buf.length - off));
    const payload = this.buf.slice(off, dataLen);
    const dataEnd = seqAdd(s, dataLen);
    const fin = this.finQueued && dataEnd === this.finSeq;
    const push = dataLen > 0 && dataEnd === seqAdd(this.bufSeq, this.buf.length);
    sink.emitData(s, payload, fin, push);
    return dataLen + (fin ? 1 : 0);
  }
}
