// The TLS engine's view of one flow's policy (mitm FlowPolicyHook): the
// verdict once the ClientHello is read, turned into what the engine does.
//   block   -> TLS alert access_denied
//   inspect -> terminated, unless the name is on the shipped pinned-apps
//              list (bypassed like a learned pin: pinned-listed)
//   allow, bypass
//     decided by a name (hosts, categories) -> relayed undecrypted only once
//              the destination proved that name; else what the flow gets
//              without the name (inspected, or blocked). A spoofed SNI is no
//              way around inspection or a block.
//     decided without a name (dst, ports, users) -> relayed as it is: no
//              client-written name was involved (reason no-sni when the
//              ClientHello has no SNI, else policy-bypass).
// A flow that is not TLS: block refuses it, allow relays it, inspect and
// bypass leave it to tls.nonTls.
import type { FlowPolicyHook, InspectedFlow, NonTlsDecision, TlsDecision, UndecryptedReason } from '../../mitm';
import type { FlowPolicy, OpenedFlow } from './decide';

export function tlsHook(fp: FlowPolicy, flow: OpenedFlow, inspected: InspectedFlow): FlowPolicyHook {
  const settle = (host: string | null): void => {
    const v = fp.named(flow, host);
    inspected.rule = v.rule;
    inspected.action = v.action;
  };
  return {
    tls: (hello): TlsDecision => {
      settle(hello.sni);
      const v = flow.verdict;
      if (v.action === 'block') {
        fp.recordTcp(flow, 'policy-block');
        return { action: 'block' };
      }
      if (v.action === 'inspect') {
        if (!flow.policy.pinnedListed(hello.sni)) return { action: 'inspect' };
        return { action: 'bypass', reason: 'pinned-listed', verify: true, unverified: 'inspect' };
      }
      const byName = fp.matchedByName(flow);
      if (byName === null) return { action: 'bypass', reason: hello.sni === null ? 'no-sni' : 'policy-bypass', verify: false, unverified: 'inspect' };
      // Without the name the flow would be forwarded anyway: nothing for a proof to protect.
      const without = flow.early.action;
      if (without === 'allow' || without === 'bypass') return { action: 'bypass', reason: byName, verify: false, unverified: 'inspect' };
      return { action: 'bypass', reason: byName, verify: true, unverified: without === 'block' ? 'block' : 'inspect' };
    },
    nonTls: (): NonTlsDecision => {
      settle(null);
      // Recorded once, by undecrypted(), with reason non-tls.
      const action = flow.verdict.action;
      return action === 'block' || action === 'allow' ? action : 'nonTls';
    },
    undecrypted: (reason: UndecryptedReason, host: string | null): void => fp.recordTcp(flow, reason, host),
  };
}
