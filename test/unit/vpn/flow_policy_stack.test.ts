// Policy on the data path, packet by packet: the stack wired to FlowPolicy
// and TcpPolicy as the concentrator wires them, with a real compiled policy.
// A block is answered at once with the packet a client understands (TCP
// reset, ICMP administratively prohibited for UDP and ICMP), recorded with
// the rule; one decision per flow; DNS to the concentrator is no flow of
// policy's; what is recorded is what `policy explain` says.
import { EgressGuard, type TcpFlowInfo, type UdpEgressFactory } from '../../../netstack';
import {
  buildIcmpEcho, buildTcpPacket, buildUdpPacket, Icmpv4Repr, Icmpv4View, IpAddress, IpCidr, isWireError, parseIpPacket, RST, SYN, TcpView,
} from '../../../netstack/wire';
import { explain, PolicyHolder } from '../../../policy';
import { FlowPolicy, TcpPolicy } from '../../../vpn/flow_policy';
import { policyFrom, query } from '../policy/helpers';
import { stackWithSinks } from '../netstack/stack_harness';

const SERVER4 = IpAddress.parse('10.77.0.1');
const ALICE4 = IpAddress.parse('10.77.0.2');
const BOB4 = IpAddress.parse('10.77.0.3');
const alice = { id: 'alice-key', user: 'alice', device: 'laptop' };
const bob = { id: 'bob-key', user: 'bob', device: 'phone' };

const RULES = `groups:
  finance: [bob]
policy:
  rules:
    - { id: finance-db, action: allow, dst: [10.20.0.0/16], groups: [finance] }
    - { id: db-closed, action: block, dst: [10.20.0.0/16] }
    - { id: no-telnet, action: block, protocol: tcp, ports: [23] }
    - { id: inspect-tls, action: inspect, protocol: tcp, ports: [443] }
    - { id: allow-rest, action: allow }
`;

interface Rec {
  user: string;
  type: string;
  fields: Record<string, unknown>;
}

function rig(yaml = RULES) {
  const out: Buffer[] = [];
  const records: Rec[] = [];
  const opened: string[] = [];
  const engineFlows: string[] = [];
  const dnsQueries: string[] = [];
  const holder = new PolicyHolder(policyFrom(yaml));
  const fp = new FlowPolicy({ holder, inspectPorts: [443], records: { write: (user, _peer, type, fields = {}) => records.push({ user, type, fields }) }, now: () => 0 });
  const tcp = new TcpPolicy({ fp, engine: { handle: (_c, _u, f) => engineFlows.push(f.dstAddress) }, dial: () => new Promise(() => undefined), nonTls: 'block' });
  const handlers: Array<TcpFlowInfo & { chosen: string }> = [];
  const udpEgress: UdpEgressFactory = (_family, host, port) => {
    opened.push(`${host}:${port}`);
    return { send: () => undefined, close: () => undefined };
  };
  const stack = stackWithSinks({
    localAddresses: [SERVER4],
    guard: new EgressGuard({ tunnelAddresses: [SERVER4], tunnelPools: [IpCidr.parse('10.77.0.0/24')], listener: { address: null, port: 51820 }, hostInterfaces: [] }),
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 8 },
    udpEgress,
    tcp: { mtu: 1420, maxFlowsPerUser: 8, maxSynPerSecond: 100, idleTimeoutMs: 60_000 },
    tcpHandler: (f) => {
      const h = tcp.handlerFor(f);
      handlers.push({ ...f, chosen: h === null ? 'refused' : h === undefined ? 'socket' : 'handler' });
      return h === undefined ? () => new Promise(() => undefined) : h;
    },
    admit: (owner, protocol, dst, port) => fp.admitDatagram(owner, protocol, dst, port),
    clock: () => 0,
  });
  stack.udpService(53, (req) => dnsQueries.push(req.payload.toString()));
  return { stack, out, records, opened, engineFlows, dnsQueries, fp, holder, handlers };
}

const udp = (src: IpAddress, dst: string, port: number, payload = 'x') => buildUdpPacket(src, 40000, IpAddress.parse(dst), port, Buffer.from(payload));
const syn = (src: IpAddress, dst: string, port: number) =>
  buildTcpPacket(src, IpAddress.parse(dst), { srcPort: 40001, dstPort: port, seq: 1, ack: 0, flags: SYN, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
const echo = (src: IpAddress, dst: string) => buildIcmpEcho(src, IpAddress.parse(dst), 'echo_request', 7, 1, Buffer.from('ping'));

function icmpOf(packet: Buffer): { src: string; type: string; code: number } {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) throw new Error(pkt.reason);
  const v = Icmpv4View.parse(pkt.payload);
  if (isWireError(v)) throw new Error(v.reason);
  const r = Icmpv4Repr.parse(v);
  if (isWireError(r)) throw new Error(r.reason);
  return { src: IpAddress.fromBytes(pkt.src).toString(), type: r.message.kind, code: 'code' in r.message ? r.message.code : -1 };
}

function isRst(packet: Buffer): boolean {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) return false;
  const t = TcpView.parse(pkt.payload);
  return !isWireError(t) && (t.flags & RST) !== 0;
}

describe('UDP: decided at the first datagram of a flow', () => {
  test('a blocked destination gets ICMP administratively prohibited (3/13) from the tunnel address, no socket, and a policy record', () => {
    const r = rig();
    r.stack.receive(udp(ALICE4, '10.20.0.5', 5432), alice, 0);
    expect(r.opened).toEqual([]);
    expect(r.out.map(icmpOf)).toEqual([{ src: '10.77.0.1', type: 'dst_unreachable', code: 13 }]);
    expect(r.records).toEqual([{
      user: 'alice', type: 'policy',
      fields: { rule: 'db-closed', action: 'block', reason: 'policy-block', host: null, dst: '10.20.0.5', dstPort: 5432, proto: 'udp', device: 'laptop' },
    }]);
    expect(r.stack.counters.udp_policy_block).toBe(1);
  });

  test('a group member reaches the destination blocked for everyone else (allow finance, block the rest)', () => {
    const r = rig();
    r.stack.receive(udp(BOB4, '10.20.0.5', 5432), bob, 0);
    expect(r.opened).toEqual(['10.20.0.5:5432']);
    expect(r.out).toEqual([]);
  });

  test('the later datagrams of an admitted flow are not decided again', () => {
    const r = rig();
    for (let i = 0; i < 5; i++) r.stack.receive(udp(ALICE4, '192.0.2.9', 9999), alice, 0);
    expect(r.fp.counters['udp.allow']).toBe(1);
    expect(r.opened).toEqual(['192.0.2.9:9999']);
  });

  test('DNS to the concentrator is a local service, never a flow of policy\'s, even under a rule that blocks everything', () => {
    const r = rig('policy:\n  rules:\n    - { id: nothing, action: block }\n');
    r.stack.receive(udp(ALICE4, '10.77.0.1', 53, 'query'), alice, 0);
    expect(r.dnsQueries).toEqual(['query']);
    expect(r.records).toEqual([]);
  });

  test('a flood of blocked datagrams costs at most a burst of records; the next record says how many were left out', () => {
    let now = 0;
    const r = rig();
    const fp = new FlowPolicy({ holder: r.holder, inspectPorts: [443], records: { write: (user, _p, type, fields = {}) => r.records.push({ user, type, fields }) }, now: () => now });
    for (let i = 0; i < 500; i++) fp.admitDatagram(alice, 'udp', IpAddress.parse('10.20.0.5').bytes, 1000 + i);
    expect(r.records).toHaveLength(20);
    now += 1000;
    fp.admitDatagram(alice, 'udp', IpAddress.parse('10.20.0.5').bytes, 1);
    expect(r.records[20].fields.suppressed).toBe(480);
    expect(fp.counters.records_suppressed).toBe(480);
  });
});

describe('ICMP: decided per echo request', () => {
  test('an echo to a blocked destination gets administratively prohibited; one that is allowed is not answered by policy', () => {
    const r = rig();
    r.stack.receive(echo(ALICE4, '10.20.0.5'), alice, 0);
    expect(r.out.map(icmpOf)).toEqual([{ src: '10.77.0.1', type: 'dst_unreachable', code: 13 }]);
    expect(r.records[0].fields).toMatchObject({ rule: 'db-closed', proto: 'icmp', dstPort: null });
    r.stack.receive(echo(BOB4, '10.20.0.5'), bob, 0);
    expect(r.out).toHaveLength(1);
    expect(r.stack.counters.icmp_policy_block).toBe(1);
  });
});

describe('TCP: decided at the SYN when no name can change it', () => {
  test('a blocked port is reset at once, without an upstream, and recorded', () => {
    const r = rig();
    r.stack.receive(syn(ALICE4, '192.0.2.9', 23), alice, 0);
    expect(r.handlers.map((h) => h.chosen)).toEqual(['refused']);
    expect(r.out.filter(isRst)).toHaveLength(1);
    expect(r.records[0].fields).toMatchObject({ rule: 'no-telnet', action: 'block', reason: 'policy-block', proto: 'tcp', dstPort: 23 });
  });

  test('an inspected port goes to the TLS engine; an allowed flow to socket egress, carrying its rule and action', () => {
    const r = rig();
    r.stack.receive(syn(ALICE4, '192.0.2.9', 443), alice, 0);
    r.stack.receive(syn(ALICE4, '192.0.2.9', 8080), alice, 0);
    expect(r.handlers.map((h) => [h.dstPort, h.chosen, h.decision?.rule, h.decision?.action])).toEqual([
      [443, 'handler', 'inspect-tls', 'inspect'],
      [8080, 'socket', 'allow-rest', 'allow'],
    ]);
  });

  test('an allow on an inspected port is recorded as not decrypted, reason policy-bypass', () => {
    const r = rig();
    r.stack.receive(syn(BOB4, '10.20.0.5', 443), bob, 0);
    expect(r.handlers[0].chosen).toBe('socket');
    expect(r.records).toEqual([expect.objectContaining({ fields: expect.objectContaining({ rule: 'finance-db', action: 'allow', reason: 'policy-bypass' }) as unknown })]);
  });
});

describe('names', () => {
  const names = (yaml: string, port: number) => {
    const r = rig(yaml);
    return r.fp.openTcp(alice, IpAddress.parse('192.0.2.9'), port).nameMatters;
  };

  test('with the defaults, flows off the inspected ports are not held for a name: the privacy bypass forwards them like allow-rest', () => {
    expect(names('', 22)).toBe(false);
    expect(names('', 80)).toBe(false);
    expect(names('', 443)).toBe(true);
  });

  test('a rule that blocks by name makes plain HTTP wait for its Host', () => {
    expect(names('policy:\n  rules:\n    - { id: no-evil, action: block, hosts: [evil.test] }\n    - { id: rest, action: allow }\n', 80)).toBe(true);
  });

  test('a reload between the SYN and the name does not change the policy a flow is decided by', () => {
    const r = rig('policy:\n  rules:\n    - { id: old-block, action: block, hosts: [x.test] }\n    - { id: old-rest, action: allow }\n');
    const flow = r.fp.openTcp(alice, IpAddress.parse('192.0.2.9'), 80);
    r.holder.reload(() => ({ groups: {}, policy: { categories: {}, rules: [{ id: 'new-rest', action: 'allow' }] }, tls: { inspectPorts: [443] } }));
    expect(r.fp.named(flow, 'x.test').rule).toBe('old-block');
    expect(r.fp.openTcp(alice, IpAddress.parse('192.0.2.9'), 80).early.rule).toBe('new-rest');
  });
});

test('what a flow records is what policy explain says for the same user, destination, port and name', () => {
  const r = rig();
  const cases: Array<[typeof alice, string, number, 'udp' | 'icmp']> = [[alice, '10.20.0.5', 5432, 'udp'], [bob, '10.20.0.5', 5432, 'udp'], [alice, '10.20.0.5', 0, 'icmp']];
  for (const [owner, dst, port, proto] of cases) {
    r.fp.admitDatagram(owner, proto, IpAddress.parse(dst).bytes, port);
    const e = explain(r.holder.current, query(owner.user, dst, port, null, proto));
    expect(r.fp.decide(owner.user, proto, IpAddress.parse(dst).bytes, port)).toMatchObject({ rule: e.rule, action: e.action });
  }
  for (const rec of r.records) {
    const f = rec.fields;
    const e = explain(r.holder.current, query(rec.user, f.dst as string, (f.dstPort as number | null) ?? 0, null, f.proto as 'udp'));
    expect([f.rule, f.action]).toEqual([e.rule, e.action]);
  }
  const flow = r.fp.openTcp(alice, IpAddress.parse('192.0.2.9'), 443);
  r.fp.named(flow, 'www.example.test');
  expect(flow.verdict.rule).toBe(explain(r.holder.current, query('alice', '192.0.2.9', 443, 'www.example.test')).rule);
});
