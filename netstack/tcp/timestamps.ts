// TCP timestamps of one flow (RFC 7323): our TSval clock, TS.Recent and its
// update rule, PAWS, and RTT samples from the echoed value.
import { TcpOptions } from '../wire/tcp';
import { Seq, asSeq, seqGt, seqLeq, seqLt } from './seq';

type Timestamp = NonNullable<TcpOptions['timestamp']>;

export class Timestamps {
  /** TS.Recent: the peer's TSval we echo (RFC 7323 §4.3). */
  recent = 0;

  constructor(
    /** Whether both sides sent the option in the handshake. */
    readonly enabled: boolean,
    /** Added to `now` for TSval, so it does not reveal our clock (RFC 7323 §7.1). */
    private readonly offset: number,
  ) {}

  /** The option of an arriving segment, when timestamps are in use. */
  of(options: TcpOptions): Timestamp | undefined {
    return this.enabled ? options.timestamp : undefined;
  }

  /** Our TSval at `now`. */
  value(now: number): number {
    return (Math.floor(now) + this.offset) >>> 0;
  }

  /** The option our segments carry. */
  option(now: number): Timestamp {
    return { value: this.value(now), echo: this.recent };
  }

  /** RFC 7323 §5.3 PAWS: a timestamp older than TS.Recent marks an old duplicate. */
  isOld(ts: Timestamp): boolean {
    return seqLt(asSeq(ts.value), asSeq(this.recent));
  }

  /** Newer than TS.Recent: a new SYN may reuse a TIME-WAIT 4-tuple (RFC 6191). */
  isNewer(ts: Timestamp): boolean {
    return seqGt(asSeq(ts.value), asSeq(this.recent));
  }

  /** RFC 7323 §4.3: TS.Recent follows segments at or below the last ACK we sent. */
  update(ts: Timestamp | undefined, seq: Seq, lastAckSent: Seq): void {
    if (ts !== undefined && seqLeq(seq, lastAckSent)) this.recent = ts.value;
  }

  /** The RTT the echoed value measures (RFC 7323 §4.1), or null without one. */
  rttSample(ts: Timestamp | undefined, now: number): number | null {
    const rtt = ts !== undefined && ts.echo !== 0 ? (this.value(now) - ts.echo) >>> 0 : null;
    return rtt !== null && rtt < 0x7fffffff ? rtt : null;
  }
}
