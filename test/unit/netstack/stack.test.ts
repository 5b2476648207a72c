import { EgressGuard, TcpOpenError, type FlowRecord, type TcpFlowHandler, type TcpFlowInfo, type UdpEgressFactory, type UdpEgressHandlers } from '../../../netstack';
import { PassThrough, type Duplex } from 'node:stream';
import {
  buildIcmpEcho,
  buildUdpPacket,
  buildTcpPacket,
  TcpView,
  SYN,
  ACK,
  RST,
  TcpRepr,
  Icmpv4Repr,
  Icmpv4View,
  IpAddress,
  IpCidr,
  isWireError,
  parseIpPacket,
  UdpView,
  verifyUpperLayerChecksum,
} from '../../../netstack/wire';
import { stackWithSinks } from './stack_harness';

const SERVER4 = IpAddress.parse('10.77.0.1');
const SERVER6 = IpAddress.parse('fd77::1');
const ALICE4 = IpAddress.parse('10.77.0.2');
const ALICE6 = IpAddress.parse('fd77::2');
const ORIGIN = IpAddress.parse('192.0.2.10');
const owner = { id: 'alice-key', user: 'alice' };

/** Records what the stack would send on OS sockets; the test plays the remote side. */
function recordingEgress() {
  const sockets: Array<{ family: number; host: string; port: number; sent: Buffer[]; h: UdpEgressHandlers; closed: boolean }> = [];
  const factory: UdpEgressFactory = (family, host, port, h) => {
    const s = { family, host, port, sent: [] as Buffer[], h, closed: false };
    sockets.push(s);
    return { send: (p) => s.sent.push(Buffer.from(p)), close: () => (s.closed = true) };
  };
  return { sockets, factory };
}

function makeStack(maxFlowsPerUser = 4, tcpHandler?: (f: TcpFlowInfo) => TcpFlowHandler | null | undefined) {
  const out: Buffer[] = [];
  const egress = recordingEgress();
  const records: FlowRecord[] = [];
  let now = 0;
  const stack = stackWithSinks({
    localAddresses: [SERVER4, SERVER6],
    guard: new EgressGuard({ tunnelAddresses: [SERVER4, SERVER6], tunnelPools: [IpCidr.parse('10.77.0.0/24'), IpCidr.parse('fd77::/64')], listener: null }),
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser },
    udpEgress: egress.factory,
    tcp: { mtu: 1420, maxFlowsPerUser, maxSynPerSecond: 3, idleTimeoutMs: 60_000, msl: 100 },
    tcpHandler,
    onFlowEnd: (r) => records.push(r),
    clock: () => now,
  });
  return { stack, out, egress, records, setNow: (t: number) => (now = t) };
}

function syn(srcPort: number, dstPort = 80, seq = 1000): Buffer {
  return buildTcpPacket(ALICE4, ORIGIN, { srcPort, dstPort, seq, ack: 0, flags: SYN, window: 65535, urgent: 0, options: { mss: 1460 }, payload: Buffer.alloc(0) });
}

function tcpOf(packet: Buffer): TcpRepr {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) throw new Error(pkt.reason);
  expect(verifyUpperLayerChecksum(pkt)).toBe(true);
  const view = TcpView.parse(pkt.payload);
  if (isWireError(view)) throw new Error(view.reason);
  const repr = TcpRepr.parse(view);
  if (isWireError(repr)) throw new Error(repr.reason);
  return repr;
}

const flush = () => new Promise((r) => setImmediate(r));

describe('NetStack', () => {
  test('answers ICMP echo to its own IPv4 address with a valid echo reply', () => {
    const { stack, out } = makeStack();
    stack.receive(buildIcmpEcho(ALICE4, SERVER4, 'echo_request', 7, 1, Buffer.from('ping')), owner, 0);
    expect(out).toHaveLength(1);
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    expect(verifyUpperLayerChecksum(pkt)).toBe(true);
    expect(IpAddress.fromBytes(pkt.dst).toString()).toBe('10.77.0.2');
    const view = Icmpv4View.parse(pkt.payload);
    if (isWireError(view)) throw new Error(view.reason);
    expect(Icmpv4Repr.parse(view)).toMatchObject({ message: { kind: 'echo_reply', identifier: 7, sequence: 1, data: Buffer.from('ping') } });
  });

  test('answers ICMPv6 echo to its own IPv6 address', () => {
    const { stack, out } = makeStack();
    stack.receive(buildIcmpEcho(ALICE6, SERVER6, 'echo_request', 9, 2, Buffer.from('six')), owner, 0);
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    expect(pkt.family).toBe(6);
    expect(verifyUpperLayerChecksum(pkt)).toBe(true);
  });

  test('re-originates UDP from one socket per flow and wraps replies back to the client', () => {
    const { stack, out, egress } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, ORIGIN, 7, Buffer.from('a')), owner, 0);
    stack.receive(buildUdpPacket(ALICE4, 5000, ORIGIN, 7, Buffer.from('b')), owner, 1);
    expect(egress.sockets).toHaveLength(1);
    expect(egress.sockets[0]).toMatchObject({ family: 4, host: '192.0.2.10', port: 7 });
    expect(egress.sockets[0].sent.map(String)).toEqual(['a', 'b']);
    egress.sockets[0].h.onMessage(Buffer.from('reply'));
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    expect(verifyUpperLayerChecksum(pkt)).toBe(true);
    const udp = UdpView.parse(pkt.payload);
    if (isWireError(udp)) throw new Error(udp.reason);
    expect([IpAddress.fromBytes(pkt.src).toString(), udp.srcPort, IpAddress.fromBytes(pkt.dst).toString(), udp.dstPort]).toEqual(['192.0.2.10', 7, '10.77.0.2', 5000]);
    expect(udp.payload.toString()).toBe('reply');
  });

  test('closes idle UDP flows after the idle timeout', () => {
    const { stack, egress } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, ORIGIN, 7, Buffer.from('a')), owner, 0);
    stack.tick(59_999);
    expect(egress.sockets[0].closed).toBe(false);
    stack.tick(60_000);
    expect(egress.sockets[0].closed).toBe(true);
  });

  test('enforces the per-user UDP flow limit and counts the drops', () => {
    const { stack, egress } = makeStack(2);
    for (let port = 1; port <= 3; port++) stack.receive(buildUdpPacket(ALICE4, 5000 + port, ORIGIN, 7, Buffer.from('x')), owner, 0);
    expect(egress.sockets).toHaveLength(2);
    expect(stack.counters.udp_flow_limit).toBe(1);
  });

  test('answers a refused upstream port with ICMP port unreachable quoting the datagram', () => {
    const { stack, out, egress } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, ORIGIN, 9, Buffer.from('knock')), owner, 0);
    egress.sockets[0].h.onError('ECONNREFUSED');
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    const view = Icmpv4View.parse(pkt.payload);
    if (isWireError(view)) throw new Error(view.reason);
    expect(Icmpv4Repr.parse(view)).toMatchObject({ message: { kind: 'dst_unreachable', code: 3 } });
  });

  test("refuses packets to other peers' tunnel addresses (no peer-to-peer)", () => {
    const { stack, egress, out } = makeStack();
    stack.receive(buildUdpPacket(ALICE4, 5000, IpAddress.parse('10.77.0.3'), 7, Buffer.from('x')), owner, 0);
    expect(egress.sockets).toHaveLength(0);
    expect(out).toHaveLength(1);
    expect(stack.counters.egress_denied_peer_to_peer).toBe(1);
  });

  test('hands UDP to a local service port to its handler and replies from the local address', () => {
    const { stack, out } = makeStack();
    stack.udpService(53, (req, reply) => reply(Buffer.concat([Buffer.from('re:'), req.payload])));
    stack.receive(buildUdpPacket(ALICE6, 4444, SERVER6, 53, Buffer.from('q')), owner, 0);
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    expect(IpAddress.fromBytes(pkt.src).toString()).toBe('fd77::1');
    const udp = UdpView.parse(pkt.payload);
    if (isWireError(udp)) throw new Error(udp.reason);
    expect(udp.payload.toString()).toBe('re:q');
  });

  test('counts malformed packets by reason and never throws', () => {
    const { stack } = makeStack();
    const good = buildUdpPacket(ALICE4, 5000, ORIGIN, 7, Buffer.from('abc'));
    const corrupted = Buffer.from(good);
    corrupted[corrupted.length - 1] ^= 0xff;
    stack.receive(corrupted, owner, 0);
    stack.receive(Buffer.from([0x45, 0, 0]), owner, 0);
    stack.receive(Buffer.alloc(0), owner, 0);
    for (let i = 0; i < 5000; i++) {
      const junk = Buffer.from(good.subarray(0, Math.floor(Math.random() * good.length)));
      for (let j = 0; j < junk.length; j++) if (Math.random() < 0.1) junk[j] = Math.floor(Math.random() * 256);
      expect(() => stack.receive(junk, owner, 0)).not.toThrow();
    }
    expect(stack.counters.drop_bad_l4_checksum).toBeGreaterThanOrEqual(1);
    expect(stack.counters.drop_truncated).toBeGreaterThanOrEqual(2);
  });

  test('answers a SYN only after the upstream connect succeeded (SYN-ACK), then relays bytes', async () => {
    let resolveOpen: (u: { attach(c: Duplex): void; abort(): void }) => void = () => undefined;
    const upstream = new PassThrough();
    const { stack, out } = makeStack(4, () => () => new Promise((r) => (resolveOpen = r)));
    stack.receive(syn(40000), owner, 0);
    expect(out).toHaveLength(0);
    let client: Duplex | null = null;
    resolveOpen({ attach: (c) => (client = c), abort: () => undefined });
    await flush();
    const synAck = tcpOf(out[0]);
    expect(synAck.flags).toBe(SYN | ACK);
    expect(synAck.ack).toBe(1001);
    expect(synAck.options.mss).toBe(1380);
    // Complete the handshake and send data.
    const ackPkt = buildTcpPacket(ALICE4, ORIGIN, { srcPort: 40000, dstPort: 80, seq: 1001, ack: (synAck.seq + 1) >>> 0, flags: ACK, window: 65535, urgent: 0, options: {}, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') });
    stack.receive(ackPkt, owner, 1);
    expect(client).not.toBeNull();
    const got = await new Promise<string>((r) => (client as unknown as Duplex).once('data', (d: Buffer) => r(d.toString())));
    expect(got).toBe('GET / HTTP/1.0\r\n\r\n');
    upstream.destroy();
  });

  test('a refused upstream gives the client an RST for its SYN', async () => {
    const { stack, out } = makeStack(4, () => () => Promise.reject(new TcpOpenError('refused', 'test')));
    stack.receive(syn(40001), owner, 0);
    await flush();
    const rst = tcpOf(out[0]);
    expect(rst.flags & RST).toBe(RST);
    expect(rst.ack).toBe(1001);
  });

  test('an unreachable upstream gives the client an ICMP host unreachable', async () => {
    const { stack, out } = makeStack(4, () => () => Promise.reject(new TcpOpenError('unreachable_host', 'test')));
    stack.receive(syn(40002), owner, 0);
    await flush();
    const pkt = parseIpPacket(out[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    const view = Icmpv4View.parse(pkt.payload);
    if (isWireError(view)) throw new Error(view.reason);
    expect(Icmpv4Repr.parse(view)).toMatchObject({ message: { kind: 'dst_unreachable', code: 1 } });
  });

  test('a segment of an unknown flow is answered with RST (RFC 9293 §3.10.7.1)', () => {
    const { stack, out } = makeStack();
    stack.receive(buildTcpPacket(ALICE4, ORIGIN, { srcPort: 40003, dstPort: 80, seq: 5, ack: 77, flags: ACK, window: 100, urgent: 0, options: {}, payload: Buffer.alloc(0) }), owner, 0);
    const rst = tcpOf(out[0]);
    expect(rst.flags).toBe(RST);
    expect(rst.seq).toBe(77);
    expect(stack.counters.tcp_unknown_flow).toBe(1);
  });

  test('enforces the per-user concurrent TCP flow limit, counting drops', () => {
    const pending = () => new Promise<never>(() => undefined);
    const { stack } = makeStack(4, () => pending);
    for (let p = 0; p < 6; p++) stack.receive(syn(41000 + p), owner, 0);
    expect(stack.tcpFlows).toBe(4);
    expect(stack.counters.tcp_flow_limit).toBe(2);
  });

  test('enforces the per-user SYN rate (burst of 2x the rate, then refilled over time)', () => {
    const pending = () => new Promise<never>(() => undefined);
    const { stack } = makeStack(100, () => pending);
    for (let p = 0; p < 8; p++) stack.receive(syn(42000 + p), owner, 0);
    expect(stack.tcpFlows).toBe(6);
    expect(stack.counters.tcp_syn_rate_limit).toBe(2);
    stack.receive(syn(42100), owner, 1000);
    expect(stack.tcpFlows).toBe(7);
  });

  test('every ended flow yields a record with user, 5-tuple, bytes and how it ended', async () => {
    const { stack, records } = makeStack(4, () => () => Promise.reject(new TcpOpenError('refused', 'test')));
    stack.receive(syn(40005), owner, 0);
    await flush();
    expect(records).toEqual([expect.objectContaining({ type: 'flow', proto: 'tcp', user: 'alice', src: '10.77.0.2', srcPort: 40005, dst: '192.0.2.10', dstPort: 80, bytesUp: 0, bytesDown: 0 })]);
    expect(records[0].end).toMatch(/refused/);
  });
});
