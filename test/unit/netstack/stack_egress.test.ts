// The stack consults the egress guard for every packet that is not for the
// concentrator itself: a refused one never reaches an egress socket or a TCP
// handler, is counted by reason, reported, and answered at once with ICMP
// administratively prohibited (type 3 code 13 / type 1 code 1) from the
// concentrator's tunnel address.
import { type EgressDenial, type TcpFlowInfo, type UdpEgressFactory } from '../../../netstack';
import { buildIcmpEcho, buildTcpPacket, buildUdpPacket, IpAddress, RST, SYN } from '../../../netstack/wire';
import { ALICE4, ALICE6, icmpOf, SERVER4, SERVER6, testGuard } from './egress_fixtures';
import { stackWithSinks } from './stack_harness';

const owner = { id: 'alice-key', user: 'alice' };

function makeStack() {
  const out: Buffer[] = [];
  const denials: Array<Omit<EgressDenial, 'dst'> & { dst: string }> = [];
  const opened: string[] = [];
  const tcpAsked: TcpFlowInfo[] = [];
  const udpEgress: UdpEgressFactory = (_family, host, port) => {
    opened.push(`${host}:${port}`);
    return { send: () => undefined, close: () => undefined };
  };
  const stack = stackWithSinks({
    localAddresses: [SERVER4, SERVER6],
    guard: testGuard(),
    // The dst bytes are a view into the packet: copy them as the callback must.
    onEgressDenied: (d) => denials.push({ ...d, dst: IpAddress.fromBytes(d.dst).toString() }),
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 8 },
    udpEgress,
    tcp: { mtu: 1420, maxFlowsPerUser: 8, maxSynPerSecond: 100, idleTimeoutMs: 60_000 },
    tcpHandler: (f) => {
      tcpAsked.push(f);
      return () => new Promise(() => undefined);
    },
    clock: () => 0,
  });
  return { stack, out, denials, opened, tcpAsked };
}

function syn(src: IpAddress, dst: IpAddress, flags = SYN): Buffer {
  return buildTcpPacket(src, dst, { srcPort: 40000, dstPort: 8080, seq: 1, ack: 0, flags, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
}

describe('NetStack egress guard', () => {
  test('a SYN to loopback gets ICMP admin prohibited (3/13) from the tunnel address and never reaches a TCP handler', () => {
    const { stack, out, denials, tcpAsked } = makeStack();
    stack.receive(syn(ALICE4, IpAddress.parse('127.0.0.1')), owner, 0);
    expect(tcpAsked).toHaveLength(0);
    expect(out.map(icmpOf)).toEqual([{ src: '10.77.0.1', dst: '10.77.0.2', type: 'dst_unreachable', code: 13 }]);
    expect(stack.counters.egress_denied_loopback).toBe(1);
    expect(denials).toEqual([{ owner, protocol: 6, family: 4, dst: '127.0.0.1', dstPort: 8080, verdict: { reason: 'loopback', via: null } }]);
  });

  test('UDP to ::1 gets ICMPv6 admin prohibited (1/1) and opens no socket', () => {
    const { stack, out, opened } = makeStack();
    stack.receive(buildUdpPacket(ALICE6, 5000, IpAddress.parse('::1'), 53, Buffer.from('q')), owner, 0);
    expect(opened).toEqual([]);
    expect(out.map(icmpOf)).toEqual([{ src: 'fd77::1', dst: 'fd77::2', type: 'dst_unreachable', code: 1 }]);
  });

  test('UDP to ::ffff:127.0.0.1 is refused as loopback via its IPv4-mapped form', () => {
    const { stack, denials, opened } = makeStack();
    stack.receive(buildUdpPacket(ALICE6, 5000, IpAddress.parse('::ffff:127.0.0.1'), 53, Buffer.from('q')), owner, 0);
    expect(opened).toEqual([]);
    expect(denials[0].verdict).toEqual({ reason: 'loopback', via: 'ipv4_mapped' });
  });

  test('UDP to the WireGuard port of a host address is refused as wireguard_listener (no loop)', () => {
    const { stack, denials, opened } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, IpAddress.parse('192.0.2.5'), 51820, Buffer.from('wg')), owner, 0);
    expect(opened).toEqual([]);
    expect(denials[0].verdict.reason).toBe('wireguard_listener');
  });

  test('a ping to cloud metadata gets admin prohibited; a reset to a refused address gets nothing', () => {
    const { stack, out } = makeStack();
    stack.receive(buildIcmpEcho(ALICE4, IpAddress.parse('169.254.169.254'), 'echo_request', 1, 1, Buffer.from('x')), owner, 0);
    expect(out.map(icmpOf)).toEqual([{ src: '10.77.0.1', dst: '10.77.0.2', type: 'dst_unreachable', code: 13 }]);
    stack.receive(syn(ALICE4, IpAddress.parse('169.254.169.254'), RST), owner, 0);
    expect(out).toHaveLength(1);
    expect(stack.counters.egress_denied_link_local).toBe(2);
  });

  test('a multicast or broadcast datagram is refused from the tunnel address, not from the group', () => {
    const { stack, out } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5353, IpAddress.parse('224.0.0.251'), 5353, Buffer.from('mdns')), owner, 0);
    stack.receive(buildUdpPacket(ALICE4, 68, IpAddress.parse('192.0.2.255'), 67, Buffer.from('dhcp')), owner, 0);
    expect(out.map((p) => icmpOf(p).src)).toEqual(['10.77.0.1', '10.77.0.1']);
    expect(stack.counters.egress_denied_multicast).toBe(1);
    expect(stack.counters.egress_denied_broadcast).toBe(1);
  });

  test('allowed destinations go to egress as before', () => {
    const { stack, out, opened, tcpAsked } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, IpAddress.parse('10.1.2.3'), 7, Buffer.from('hi')), owner, 0);
    stack.receive(syn(ALICE4, IpAddress.parse('192.168.1.1')), owner, 0);
    expect(opened).toEqual(['10.1.2.3:7']);
    expect(tcpAsked.map((f) => f.dst.toString())).toEqual(['192.168.1.1']);
    expect(out).toHaveLength(0);
  });

  test('UDP to a tunnel address where no service listens gets ICMP port unreachable', () => {
    const { stack, out } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, SERVER4, 9999, Buffer.from('anyone?')), owner, 0);
    expect(out.map(icmpOf)).toEqual([{ src: '10.77.0.1', dst: '10.77.0.2', type: 'dst_unreachable', code: 3 }]);
    expect(stack.counters.drop_local_udp_no_service).toBe(1);
  });
});
