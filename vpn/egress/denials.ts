// Every egress refusal, counted by reason and written to the user's log as an
// `egress_denied` record, at most as fast as vpn/logs/record_limit.ts lets a user.
import { IpAddress } from '../../netstack/wire';
import { Counters, type EgressVerdict } from '../../netstack';
import type { RecordSink } from '../../mitm';
import { PerUserRecordLimit, RECORDS_BURST, RECORDS_PER_SECOND } from '../logs';

export { RECORDS_BURST as DENIAL_RECORDS_BURST, RECORDS_PER_SECOND as DENIAL_RECORDS_PER_SECOND } from '../logs';

const PROTOCOL_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

/** Who refused: the stack (a packet from the tunnel) or the concentrator's own fetch for a flow (AIA, OCSP). */
export type DenialPath = 'tunnel' | 'fetch';

export class EgressDenials {
  private readonly counterSet = new Counters();
  private readonly limit: PerUserRecordLimit;

  constructor(
    private readonly records: RecordSink,
    /** Monotonic ms. */
    now: () => number,
    perSecond = RECORDS_PER_SECOND,
    burst = RECORDS_BURST,
  ) {
    this.limit = new PerUserRecordLimit(now, perSecond, burst);
  }

  /**
   * Counts one refusal and logs it unless the user's bucket is empty.
   * `dst` may be a view into a packet: it is read here, never kept.
   */
  record(user: string, peer: string, path: DenialPath, protocol: number, dst: Buffer | string, dstPort: number, verdict: EgressVerdict): void {
    this.count(verdict);
    const suppressed = this.limit.take(user);
    if (suppressed === null) {
      this.inc('records_suppressed');
      return;
    }
    const fields: Record<string, unknown> = {
      proto: PROTOCOL_NAMES[protocol] ?? `ip_${protocol}`,
      dst: typeof dst === 'string' ? dst : IpAddress.fromBytes(dst).toString(),
      dstPort: dstPort < 0 ? null : dstPort,
      reason: verdict.reason,
      path,
    };
    if (verdict.via !== null) fields.via = verdict.via;
    if (suppressed > 0) fields.suppressed = suppressed;
    this.records.write(user, peer, 'egress_denied', fields);
  }

  /** Counts a refusal that belongs to no user (a fetch shared by all, such as a bypass probe's). */
  count(verdict: EgressVerdict): void {
    this.inc(`denied_${verdict.reason}`);
  }

  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  private inc(key: string): void {
    this.counterSet.inc(key);
  }
}
