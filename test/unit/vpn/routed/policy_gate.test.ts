// The one place routed mode asks the policy (vpn/routed/policy_gate.ts): TCP
// to an inspected port under `inspect` (or where the SNI could still change
// the verdict) is terminated for the TLS engine; everything else allowed is
// routed; `block` names its rule. Other IP protocols match only rules without
// protocol and ports.
import { IpAddress } from '../../../../netstack/wire';
import type { FlowOwner, RoutedPolicy } from '../../../../netstack';
import { decideOtherProtocol, routedPolicy } from '../../../../vpn/routed';
import { policyFrom } from '../../policy/helpers';

const alice: FlowOwner = { id: 'k1', user: 'alice' };
const bob: FlowOwner = { id: 'k2', user: 'bob' };
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const ICMPV6 = 58;
const GRE = 47;

function gate(yaml: string, inspectPorts = [443]): RoutedPolicy {
  const policy = policyFrom(yaml);
  return routedPolicy(() => policy, inspectPorts);
}

const dst = (a: string): Buffer => Buffer.from(IpAddress.parse(a).bytes);

describe('routed policy gate', () => {
  test('with the default rules, TCP to an inspected port goes to the TLS engine and everything else is routed', () => {
    const decide = gate('');
    expect(decide(alice, TCP, dst('10.20.0.5'), 443).action).toBe('terminate');
    expect(decide(alice, TCP, dst('10.20.0.5'), 22).action).toBe('route');
    expect(decide(alice, UDP, dst('10.20.0.5'), 443).action).toBe('route');
    expect(decide(alice, ICMP, dst('10.20.0.5'), -1).action).toBe('route');
    expect(decide(alice, GRE, dst('fd20::5'), -1).action).toBe('route');
  });

  test('an allow rule before inspection routes TCP 443 raw (nothing could change it once the SNI is read)', () => {
    const decide = gate('policy:\n  rules:\n    - id: lan\n      action: allow\n      dst: [10.20.0.0/16]\n    - id: tls\n      action: inspect\n      protocol: tcp\n      ports: [443]\n');
    expect(decide(alice, TCP, dst('10.20.0.5'), 443)).toEqual({ action: 'route', rule: '' });
    expect(decide(alice, TCP, dst('10.30.0.5'), 443).action).toBe('terminate');
  });

  test('a rule by name that could still match once the SNI is read sends the flow to the stack, whatever the verdict without a name', () => {
    const decide = gate('policy:\n  rules:\n    - id: bank\n      action: bypass\n      hosts: [bank.example]\n    - id: rest\n      action: allow\n');
    expect(decide(alice, TCP, dst('10.20.0.5'), 443).action).toBe('terminate');
    // On a port the TLS engine does not read, a name is never known: the verdict without one decides.
    expect(decide(alice, TCP, dst('10.20.0.5'), 80).action).toBe('route');
  });

  test('a block names its rule, per user, for TCP, UDP and ICMPv6', () => {
    const decide = gate('policy:\n  rules:\n    - id: no-db\n      action: block\n      dst: [10.20.0.0/16, "fd20::/16"]\n      users: [bob]\n    - id: rest\n      action: allow\n');
    expect(decide(bob, TCP, dst('10.20.0.5'), 5432)).toEqual({ action: 'block', rule: 'no-db' });
    expect(decide(bob, UDP, dst('10.20.0.5'), 53)).toEqual({ action: 'block', rule: 'no-db' });
    expect(decide(bob, ICMPV6, dst('fd20::5'), -1)).toEqual({ action: 'block', rule: 'no-db' });
    expect(decide(alice, TCP, dst('10.20.0.5'), 5432).action).toBe('route');
  });

  test('a block on the inspected port is final at the SYN (a reset, never a TLS session)', () => {
    const decide = gate('policy:\n  rules:\n    - id: closed\n      action: block\n      dst: [10.20.0.0/16]\n      protocol: tcp\n');
    expect(decide(alice, TCP, dst('10.20.0.5'), 443)).toEqual({ action: 'block', rule: 'closed' });
  });

  test('the policy in force is read per packet: a reload applies to the next packet', () => {
    let policy = policyFrom('');
    const decide = routedPolicy(() => policy, [443]);
    expect(decide(alice, UDP, dst('10.20.0.5'), 53).action).toBe('route');
    policy = policyFrom('policy:\n  rules:\n    - id: no-udp\n      action: block\n      protocol: udp\n');
    expect(decide(alice, UDP, dst('10.20.0.5'), 53)).toEqual({ action: 'block', rule: 'no-udp' });
  });
});

describe('other IP protocols (GRE, ESP, SCTP, ...)', () => {
  const yaml = [
    'policy:',
    '  rules:',
    '    - id: icmp-only',
    '      action: block',
    '      protocol: icmp',
    '    - id: ssh',
    '      action: block',
    '      ports: [22]',
    '    - id: tcp-any',
    '      action: block',
    '      protocol: tcp',
    '    - id: closed-net',
    '      action: block',
    '      dst: [10.99.0.0/16]',
    '    - id: rest',
    '      action: allow',
    '',
  ].join('\n');

  test('match neither protocol-specific rules nor rules with ports', () => {
    const decide = gate(yaml);
    expect(decide(alice, GRE, dst('10.20.0.5'), -1)).toEqual({ action: 'route', rule: '' });
    expect(decideOtherProtocol(policyFrom(yaml), { user: 'alice', protocol: 'tcp', dst: dst('10.20.0.5'), dstPort: 0, host: null }).rule).toBe('rest');
  });

  test('match a rule without protocol and ports', () => {
    expect(gate(yaml)(alice, GRE, dst('10.99.1.1'), -1)).toEqual({ action: 'block', rule: 'closed-net' });
  });

  test('fall through to the implicit no-match rule when nothing else matches', () => {
    const p = policyFrom('policy:\n  rules:\n    - id: only-udp\n      action: block\n      protocol: udp\n');
    expect(decideOtherProtocol(p, { user: 'alice', protocol: 'tcp', dst: dst('10.20.0.5'), dstPort: 0, host: null }).rule).toBe('no-match');
  });
});
