// The policy applied to the live data path: one decision per flow, by the
// same Policy.decide that `sightline policy explain` calls, with the user's
// groups from config `groups`. A flow keeps the Policy it started under, so a
// reload between its SYN and its name never mixes two policies; new flows
// take the current one. Decisions that refuse a flow, or leave it
// undecrypted on an inspected port, become `policy` records (rate-limited per
// user: a flood of refused packets costs a few lines).
import { Counters, type FlowOwner, type PolicyBlock } from '../../netstack';
import { IpAddress } from '../../netstack/wire';
import type { Action, FlowProtocol, FlowQuery, Policy, PolicyHolder, Verdict } from '../../policy';
import type { RecordSink } from '../../mitm';
import { PerUserRecordLimit } from '../logs';

/** A new flow's decision before its name is read, and what is needed to decide again once it is. */
export interface OpenedFlow {
  readonly owner: FlowOwner;
  /** The policy the flow started under. */
  readonly policy: Policy;
  /** `dst` is the flow's own copy; `host` null. */
  readonly query: FlowQuery;
  /** The verdict without a name. */
  readonly early: Verdict;
  /** Reading the name (SNI, HTTP Host) could change what happens to the flow. */
  readonly nameMatters: boolean;
  /** Set when the flow's name is decided (the verdict its records carry). */
  verdict: Verdict;
  host: string | null;
}

/** `policy` record fields (README, per-user logs). */
export interface PolicyEvent {
  verdict: Pick<Verdict, 'rule' | 'action'>;
  /** From the fixed list of undecrypted reasons, or `policy-block`. */
  reason: string;
  host: string | null;
  dst: string;
  dstPort: number | null;
  /** tcp, udp, icmp; routed mode also icmpv6 and ip_N for other IP protocols. */
  proto: string;
}

export interface FlowPolicyOptions {
  holder: PolicyHolder;
  /** tls.inspectPorts. */
  inspectPorts: readonly number[];
  /** Where `policy` records go (the per-user logs). */
  records: RecordSink;
  /** Monotonic ms, for the record rate limit. */
  now: () => number;
}

/** Bits of the actions in a set (nameActions). */
const ACTION_BIT: Record<Action, number> = { inspect: 1, bypass: 2, allow: 4, block: 8 };
/** On a port that is not inspected, allow and bypass both forward the flow as it is. */
const FORWARD = ACTION_BIT.allow | ACTION_BIT.bypass;

export class FlowPolicy {
  private readonly counterSet = new Counters();
  readonly inspectPorts: ReadonlySet<number>;
  private readonly limit: PerUserRecordLimit;
  /** Per compiled policy: for rule i, the actions of the rules before it that set hosts or categories. */
  private readonly nameActions = new WeakMap<Policy, Uint8Array>();

  constructor(private readonly opts: FlowPolicyOptions) {
    this.inspectPorts = new Set(opts.inspectPorts);
    this.limit = new PerUserRecordLimit(opts.now);
  }

  get holder(): PolicyHolder {
    return this.opts.holder;
  }

  /**
   * The decision for one flow of `user`: the function routed mode calls per
   * new flow, the datagram path per first UDP datagram and ICMP echo, and
   * `policy explain` in its own process (Policy.decide). `dst` is 4 or 16
   * bytes and may be a view into a packet (nothing is kept).
   */
  decide(user: string, protocol: FlowProtocol, dst: Uint8Array, dstPort: number, host: string | null = null): Verdict {
    return this.opts.holder.current.decide({ user, protocol, dst, dstPort, host });
  }

  /**
   * A datagram flow starts (first UDP datagram, ICMP echo request): false
   * refuses it (block), recorded. `dst` may be a view into the packet.
   */
  admitDatagram(owner: FlowOwner, protocol: 'udp' | 'icmp', dst: Uint8Array, dstPort: number): boolean {
    const v = this.decide(owner.user, protocol, dst, protocol === 'icmp' ? 0 : dstPort);
    this.count(`${protocol}.${v.action}`);
    if (v.action !== 'block') return true;
    this.record(owner, { verdict: v, reason: 'policy-block', host: null, dst: addressText(dst), dstPort: protocol === 'icmp' ? null : dstPort, proto: protocol });
    return false;
  }

  /** A TCP SYN: the verdict before any byte, and whether the name must be read. */
  openTcp(owner: FlowOwner, dst: IpAddress, dstPort: number): OpenedFlow {
    const policy = this.opts.holder.current;
    const query: FlowQuery = { user: owner.user, protocol: 'tcp', dst: dst.bytes, dstPort, host: null };
    const { verdict, hostMayMatter } = policy.decideBeforeHost(query);
    const nameMatters = hostMayMatter && this.nameChangesTreatment(policy, verdict, this.inspectPorts.has(dstPort));
    this.count(`tcp.${verdict.action}`);
    return { owner, policy, query, early: verdict, nameMatters, verdict, host: null };
  }

  /** The flow's name was read (null: it has none): the final verdict, by the policy the flow started under. */
  named(flow: OpenedFlow, host: string | null): Verdict {
    flow.host = host;
    flow.verdict = flow.nameMatters && host !== null ? flow.policy.decide({ ...flow.query, host }) : flow.early;
    if (flow.verdict !== flow.early) this.count(`tcp.named.${flow.verdict.action}`);
    return flow.verdict;
  }

  /** Whether a rule with a name could match (hosts, categories) set by `flow`'s rule; the reason its bypass carries. */
  matchedByName(flow: OpenedFlow): 'category' | 'policy-bypass' | null {
    const rule = flow.policy.rules[flow.verdict.index];
    if (rule.categories !== null) return 'category';
    return rule.hosts !== null ? 'policy-bypass' : null;
  }

  /** Routed mode's block of a packet before the TUN (netstack TunEgress): the same record as socket mode's. */
  routedBlock(b: PolicyBlock): void {
    this.count('routed_block');
    const proto = ROUTED_PROTOCOL_NAMES[b.protocol] ?? `ip_${b.protocol}`;
    this.record(b.owner, { verdict: { rule: b.rule, action: 'block' }, reason: 'policy-block', host: null, dst: addressText(b.dst), dstPort: b.dstPort < 0 ? null : b.dstPort, proto });
  }

  /** A `policy` record for a TCP flow's decision. */
  recordTcp(flow: OpenedFlow, reason: string, host = flow.host): void {
    this.record(flow.owner, { verdict: flow.verdict, reason, host, dst: addressText(flow.query.dst), dstPort: flow.query.dstPort, proto: 'tcp' });
  }

  /** Writes a `policy` record unless the user's bucket is empty. Never throws. */
  record(owner: FlowOwner, e: PolicyEvent): void {
    const suppressed = this.limit.take(owner.user);
    if (suppressed === null) {
      this.count('records_suppressed');
      return;
    }
    const device = 'device' in owner && typeof owner.device === 'string' ? owner.device : null;
    const fields: Record<string, unknown> = {
      rule: e.verdict.rule, action: e.verdict.action, reason: e.reason, host: e.host, dst: e.dst, dstPort: e.dstPort, proto: e.proto, device,
    };
    if (suppressed > 0) fields.suppressed = suppressed;
    try {
      this.opts.records.write(owner.user, owner.id, 'policy', fields);
    } catch {
      this.count('record_errors');
    }
  }

  count(key: string): void {
    this.counterSet.inc(key);
  }

  /** Counters by reason (status.json, /metrics). */
  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  /**
   * Whether a rule with hosts/categories before the early verdict could
   * change what happens to the flow. On an inspected port always (the
   * ClientHello is read anyway); elsewhere only when such a rule's action
   * differs in effect from the early one: allow and bypass both forward a
   * flow there, so the shipped privacy bypass costs no name reading on SSH.
   */
  private nameChangesTreatment(policy: Policy, early: Verdict, inspectedPort: boolean): boolean {
    if (inspectedPort) return true;
    const before = this.nameActionsOf(policy)[early.index];
    const same = (early.action === 'allow' || early.action === 'bypass') ? FORWARD : ACTION_BIT[early.action];
    return (before & ~same) !== 0;
  }

  private nameActionsOf(policy: Policy): Uint8Array {
    let table = this.nameActions.get(policy);
    if (table === undefined) {
      table = new Uint8Array(policy.rules.length);
      let acc = 0;
      policy.rules.forEach((r, i) => {
        table![i] = acc;
        if (r.hosts !== null || r.categories !== null) acc |= ACTION_BIT[r.verdict.action];
      });
      this.nameActions.set(policy, table);
    }
    return table;
  }
}

const ROUTED_PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

function addressText(dst: Uint8Array): string {
  return IpAddress.fromBytes(Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength)).toString();
}
