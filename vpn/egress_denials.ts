// Every egress refusal, counted by reason and written to the user's log as an
// `egress_denied` record. A user can send refused packets as fast as the
// tunnel carries them, so records are rate-limited per user (a token bucket);
// what a bucket suppresses is counted and named in that user's next record.
import { IpAddress } from '../netstack/wire';
import type { EgressVerdict } from '../netstack';
import type { RecordSink } from '../mitm';

/** Records per second per user, and the burst allowed after a quiet spell. */
export const DENIAL_RECORDS_PER_SECOND = 10;
export const DENIAL_RECORDS_BURST = 20;

const PROTOCOL_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

/** Who refused: the stack (a packet from the tunnel) or the concentrator's own fetch for a flow (AIA, OCSP). */
export type DenialPath = 'tunnel' | 'fetch';

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

export class EgressDenials {
  readonly counters: Record<string, number> = Object.create(null) as Record<string, number>;
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly records: RecordSink,
    /** Monotonic ms. */
    private readonly now: () => number,
    private readonly perSecond = DENIAL_RECORDS_PER_SECOND,
    private readonly burst = DENIAL_RECORDS_BURST,
  ) {}

  /**
   * Counts one refusal and logs it unless the user's bucket is empty.
   * `dst` may be a view into a packet: it is read here, never kept.
   */
  record(user: string, peer: string, path: DenialPath, protocol: number, dst: Buffer | string, dstPort: number, verdict: EgressVerdict): void {
    this.count(verdict);
    const fields = this.admit(user);
    if (fields === null) return;
    Object.assign(fields, {
      proto: PROTOCOL_NAMES[protocol] ?? `ip_${protocol}`,
      dst: typeof dst === 'string' ? dst : IpAddress.fromBytes(dst).toString(),
      dstPort: dstPort < 0 ? null : dstPort,
      reason: verdict.reason,
      path,
    });
    if (verdict.via !== null) fields.via = verdict.via;
    this.records.write(user, peer, 'egress_denied', fields);
  }

  /**
   * A packet routed mode's policy blocked (netstack TunEgress): counted, and
   * a `policy` record under the same per-user rate limit as refusals.
   */
  policyBlock(user: string, peer: string, protocol: number, dst: Buffer, dstPort: number, rule: string): void {
    this.inc('policy_block');
    const fields = this.admit(user);
    if (fields === null) return;
    const proto = PROTOCOL_NAMES[protocol] ?? `ip_${protocol}`;
    const dstText = IpAddress.fromBytes(dst).toString();
    Object.assign(fields, { proto, dst: dstText, dstPort: dstPort < 0 ? 0 : dstPort, host: null, rule, action: 'block', reason: `rule ${rule} blocks ${proto} to ${dstText}${dstPort < 0 ? '' : ` port ${dstPort}`} (routed mode)` });
    this.records.write(user, peer, 'policy', fields);
  }

  /** The start of a record if the user's bucket has a token (with how many were suppressed before it), else null. */
  private admit(user: string): Record<string, unknown> | null {
    const b = this.bucket(user);
    if (b.tokens < 1) {
      b.suppressed++;
      this.inc('records_suppressed');
      return null;
    }
    b.tokens -= 1;
    const fields: Record<string, unknown> = {};
    if (b.suppressed > 0) {
      fields.suppressed = b.suppressed;
      b.suppressed = 0;
    }
    return fields;
  }

  /** Counts a refusal that belongs to no user (a fetch shared by all, such as a bypass probe's). */
  count(verdict: EgressVerdict): void {
    this.inc(`denied_${verdict.reason}`);
  }

  private bucket(user: string): Bucket {
    const now = this.now();
    let b = this.buckets.get(user);
    if (b === undefined) {
      b = { tokens: this.burst, at: now, suppressed: 0 };
      this.buckets.set(user, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    return b;
  }

  private inc(key: string): void {
    this.counters[key] = (this.counters[key] ?? 0) + 1;
  }
}
