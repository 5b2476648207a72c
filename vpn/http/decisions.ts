// What happened to a user's connections, in plain words, from the records
// written to their log: the portal's "your recent connections" list and the
// flows-by-action metric are both fed from here, so neither can disagree
// with the log. Policy records (the policy engine) read the same way.
import { Counters } from '../../netstack';
import type { WrittenRecord } from '../logs';

export type Action = 'inspected' | 'not decrypted' | 'passed' | 'blocked';

export interface Decision {
  time: number;
  host: string;
  action: Action;
  reason: string;
}

const RING = 50;
const MAX_USERS = 10_000;

export interface DecisionContext {
  /** tls.inspectPorts: their flows are described by flow_end, not by flow. */
  inspectPorts: ReadonlySet<number>;
  /** The concentrator's own tunnel addresses: its services (DNS, this portal) are not decisions. */
  localAddresses: ReadonlySet<string>;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** The decision a record stands for, or null when it is not one (a DNS query, a session, an HTTP request). */
export function decisionOf(r: WrittenRecord, ctx: DecisionContext): Decision | null {
  const f = r.fields;
  const at = (host: string, action: Action, reason: string): Decision => ({ time: r.time, host, action, reason });
  switch (r.type) {
    case 'flow': {
      const dstPort = Number(f.dstPort);
      if (ctx.inspectPorts.has(dstPort) || ctx.localAddresses.has(str(f.dst))) return null;
      return at(`${str(f.dst)}:${dstPort}`, 'passed', `port ${dstPort} is not inspected`);
    }
    case 'flow_end':
      return flowEnd(r);
    case 'egress_denied':
      return at(`${str(f.dst)}:${str(f.dstPort)}`, 'blocked', str(f.reason));
    case 'policy': {
      const action = str(f.action);
      const mapped: Action = action === 'block' ? 'blocked' : action === 'bypass' ? 'not decrypted' : action === 'inspect' ? 'inspected' : 'passed';
      return at(str(f.host) || `${str(f.dst)}:${str(f.dstPort)}`, mapped, [str(f.rule), str(f.reason)].filter(Boolean).join(': '));
    }
    default:
      return null;
  }
}

function flowEnd(r: WrittenRecord): Decision {
  const f = r.fields;
  const host = str(f.host);
  const result = str(f.result);
  const at = (action: Action, reason: string): Decision => ({ time: r.time, host, action, reason });
  switch (str(f.mode)) {
    case 'inspect':
      // Only a relayed flow names its certificate issuer; an inspected flow without one was refused before any data.
      if (f.issuer === undefined) return at('blocked', refusal(result, str(f.reason)));
      return f.issuer === 'untrusted' ? at('inspected', "the site's certificate is not valid: your browser was warned") : at('inspected', 'decrypted and checked');
    case 'bypass':
      return at('not decrypted', 'the app pins its certificate, or policy exempts the site');
    case 'non_tls':
      return result === 'non_tls_blocked' ? at('blocked', `not TLS on an inspected port (${str(f.guess) || 'unknown protocol'})`) : at('passed', 'not TLS, relayed as is');
    default:
      return at('blocked', refusal(result, str(f.reason)));
  }
}

function refusal(result: string, reason: string): string {
  switch (result) {
    case 'blocked_by_policy':
      return 'blocked by company policy';
    case 'upstream_rejected':
      return `the site's certificate or TLS failed checks${reason ? ` (${reason})` : ''}`;
    case 'client_handshake_failed':
      return 'your device did not accept the company certificate';
    default:
      return result.replace(/_/g, ' ');
  }
}

/** Each user's last decisions, newest last; bounded in users and per user. */
export class RecentDecisions {
  private readonly byUser = new Map<string, Decision[]>();
  private readonly counters = new Counters<Action>(['inspected', 'not decrypted', 'passed', 'blocked']);

  constructor(private readonly ctx: DecisionContext) {}

  /** Decisions observed since start, by action (sightline_flows_total). */
  get counts(): Record<Action, number> {
    return this.counters.values;
  }

  observe(r: WrittenRecord): void {
    const d = decisionOf(r, this.ctx);
    if (d === null) return;
    this.counters.inc(d.action);
    let ring = this.byUser.get(r.user);
    if (ring === undefined) {
      if (this.byUser.size >= MAX_USERS) {
        const oldest = this.byUser.keys().next().value;
        if (oldest !== undefined) this.byUser.delete(oldest);
      }
      ring = [];
    } else {
      this.byUser.delete(r.user);
    }
    this.byUser.set(r.user, ring);
    ring.push(d);
    if (ring.length > RING) ring.shift();
  }

  /** The user's decisions, newest first. */
  of(user: string): Decision[] {
    return [...(this.byUser.get(user) ?? [])].reverse();
  }
}
