// The one place routed mode asks the policy (policy/, issue 9's decision
// function): per packet, with the user, protocol, destination and port, and
// no name (a routed packet is never read past its headers). A TCP flow to an
// inspected port whose verdict is `inspect`, or could still change once the
// SNI is read, is terminated by the stack for the TLS engine, as in socket
// mode; every other allowed packet is routed; `block` is blocked.
import { checkRule, type FlowQuery, type Policy, type Verdict } from '../../policy';
import type { FlowOwner, RoutedPolicy, RoutedVerdict } from '../../netstack';
import { IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP } from '../../netstack/wire';

const ROUTE: RoutedVerdict = Object.freeze({ action: 'route', rule: '' });
const TERMINATE: RoutedVerdict = Object.freeze({ action: 'terminate', rule: '' });

export function routedPolicy(current: () => Policy, inspectPorts: readonly number[]): RoutedPolicy {
  const inspected = new Set(inspectPorts);
  // One query object reused per packet: the policy reads it during the call only.
  const q: FlowQuery = { user: '', protocol: 'tcp', dst: Buffer.alloc(4), dstPort: 0, host: null };
  const blocks = new WeakMap<Verdict, RoutedVerdict>();
  const routed = (v: Verdict): RoutedVerdict => {
    if (v.action !== 'block') return ROUTE;
    let b = blocks.get(v);
    if (b === undefined) {
      b = Object.freeze({ action: 'block', rule: v.rule });
      blocks.set(v, b);
    }
    return b;
  };
  return (owner: FlowOwner, protocol: number, dst: Buffer, dstPort: number): RoutedVerdict => {
    const policy = current();
    q.user = owner.user;
    q.dst = dst;
    q.dstPort = dstPort < 0 ? 0 : dstPort;
    switch (protocol) {
      case IP_PROTOCOL_TCP: {
        q.protocol = 'tcp';
        if (!inspected.has(dstPort)) return routed(policy.decide(q));
        const early = policy.decideBeforeHost(q);
        return early.hostMayMatter || early.verdict.action === 'inspect' ? TERMINATE : routed(early.verdict);
      }
      case IP_PROTOCOL_UDP:
        q.protocol = 'udp';
        return routed(policy.decide(q));
      case IP_PROTOCOL_ICMP:
      case IP_PROTOCOL_ICMPV6:
        q.protocol = 'icmp';
        q.dstPort = 0;
        return routed(policy.decide(q));
      default:
        return routed(decideOtherProtocol(policy, q));
    }
  };
}

/**
 * Protocols other than TCP, UDP and ICMP (GRE, ESP, SCTP, ...) match the
 * rules that name no protocol and no ports. The decision function knows only
 * TCP, UDP and ICMP, so: such a rule matches all three, and the first of
 * them cannot come before the latest of the three decisions; from there the
 * rules are checked one by one (rare traffic; the implicit last rule always
 * matches).
 */
export function decideOtherProtocol(policy: Policy, q: FlowQuery): Verdict {
  q.dstPort = 0;
  let from = 0;
  for (const protocol of ['tcp', 'udp', 'icmp'] as const) {
    q.protocol = protocol;
    from = Math.max(from, policy.decide(q).index);
  }
  q.protocol = 'tcp';
  for (let i = from; i < policy.rules.length; i++) {
    const rule = policy.rules[i];
    if (rule.protocol === 'any' && rule.ports === null && checkRule(policy, rule, q).every((c) => c.matched)) return rule.verdict;
  }
  return policy.rules[policy.rules.length - 1].verdict;
}
