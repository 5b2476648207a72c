// Issue 8, "No input stops the service": every flow is an error boundary. A
// socket that cannot connect, a handler that throws or rejects with a bug, an
// endpoint that throws: the flow ends (the client is told where an answer
// applies), the failure is counted and reported, and nothing is thrown out
// of the stack, so nothing can reach the WireGuard device or the process.
import { PassThrough, type Duplex } from 'node:stream';
import { EgressGuard, TcpOpenError, type StackIncident, type TcpFlowHandler, type TcpFlowInfo, type UdpEgressFactory, type UdpEgressHandlers } from '../../../netstack';
import { TcpEndpoint } from '../../../netstack/tcp';
import {
  ACK, RST, SYN, IpAddress, IpCidr, Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View, buildTcpPacket, buildUdpPacket, isWireError, parseIpPacket,
  TcpView, TcpRepr,
} from '../../../netstack/wire';
import { stackWithSinks } from './stack_harness';

const CLIENT4 = IpAddress.parse('10.77.0.2');
const CLIENT6 = IpAddress.parse('fd77::2');
const ORIGIN4 = IpAddress.parse('192.0.2.10');
const UNROUTABLE6 = IpAddress.parse('2001:db8::1');
const MDNS4 = IpAddress.parse('224.0.0.251');
const owner = { id: 'alice-key', user: 'alice' };

interface FakeSocket {
  host: string;
  port: number;
  h: UdpEgressHandlers;
  sent: Buffer[];
  closed: boolean;
}

/** `allow`: prefixes an admin opened with egress.allow (the guard refuses multicast by default). */
function makeStack(opts: { tcpHandler?: (f: TcpFlowInfo) => TcpFlowHandler | null | undefined; udpEgress?: UdpEgressFactory; room?: () => boolean; allow?: string[] } = {}) {
  const out: Buffer[] = [];
  const incidents: StackIncident[] = [];
  const sockets: FakeSocket[] = [];
  const recording: UdpEgressFactory = (_family, host, port, h) => {
    const s: FakeSocket = { host, port, h, sent: [], closed: false };
    sockets.push(s);
    return { send: (p) => s.sent.push(Buffer.from(p)), close: () => (s.closed = true) };
  };
  let clientDown = false;
  const stack = stackWithSinks({
    localAddresses: [IpAddress.parse('10.77.0.1')],
    guard: new EgressGuard({
      tunnelAddresses: [IpAddress.parse('10.77.0.1')],
      tunnelPools: [IpCidr.parse('10.77.0.0/24')],
      listener: null,
      allow: (opts.allow ?? []).map((c) => IpCidr.parse(c)),
    }),
    toClient: (p) => {
      if (clientDown) throw new Error('injected: the tunnel side threw');
      out.push(p);
    },
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 16 },
    udpEgress: opts.udpEgress ?? recording,
    tcp: { mtu: 1420, maxFlowsPerUser: 16, maxSynPerSecond: 1000, idleTimeoutMs: 60_000, msl: 100 },
    tcpHandler: opts.tcpHandler,
    onIncident: (i) => incidents.push(i),
    fds: { hasRoom: opts.room ?? (() => true) },
    clock: () => 0,
  });
  return { stack, out, incidents, sockets, breakClient: (down: boolean) => (clientDown = down) };
}

function udp(src: IpAddress, dst: IpAddress, dstPort: number, srcPort = 5000): Buffer {
  return buildUdpPacket(src, srcPort, dst, dstPort, Buffer.from('query'));
}

function syn(dst: IpAddress, srcPort = 40000, dstPort = 80): Buffer {
  return buildTcpPacket(CLIENT4, dst, { srcPort, dstPort, seq: 1000, ack: 0, flags: SYN, window: 65535, urgent: 0, options: { mss: 1460 }, payload: Buffer.alloc(0) });
}

function ack(srcPort: number, seq: number, ackNo: number, payload = Buffer.alloc(0)): Buffer {
  return buildTcpPacket(CLIENT4, ORIGIN4, { srcPort, dstPort: 80, seq, ack: ackNo, flags: ACK, window: 65535, urgent: 0, options: {}, payload });
}

function tcpOf(packet: Buffer): TcpRepr | null {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt) || pkt.protocol !== 6) return null;
  const view = TcpView.parse(pkt.payload);
  const repr = isWireError(view) ? view : TcpRepr.parse(view);
  return isWireError(repr) ? null : repr;
}

/** The ICMP destination-unreachable codes sent to the client, as "v4:3/0" or "v6:1/0". */
function unreachables(out: Buffer[]): string[] {
  const found: string[] = [];
  for (const p of out) {
    const pkt = parseIpPacket(p);
    if (isWireError(pkt)) continue;
    if (pkt.protocol === 1) {
      const v = Icmpv4View.parse(pkt.payload);
      const r = isWireError(v) ? v : Icmpv4Repr.parse(v);
      if (!isWireError(r) && r.message.kind === 'dst_unreachable') found.push(`v4:3/${r.message.code}`);
    } else if (pkt.protocol === 58) {
      const v = Icmpv6View.parse(pkt.payload);
      if (isWireError(v)) continue;
      const r = Icmpv6Repr.parse(v);
      if (r.message.kind === 'dst_unreachable') found.push(`v6:1/${r.message.code}`);
    }
  }
  return found;
}

const settle = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

describe('UDP flows end on failure, the client is told, nothing is thrown', () => {
  test('a socket that cannot connect (no route to 2001:db8::1) ends its flow and the client gets ICMPv6 no-route', () => {
    const s = makeStack();
    s.stack.receive(udp(CLIENT6, UNROUTABLE6, 53), owner, 0);
    s.sockets[0].h.onFailed('ENETUNREACH');
    expect(unreachables(s.out)).toEqual(['v6:1/0']);
    expect(s.sockets[0].closed).toBe(true);
    expect(s.stack.counters.udp_connect_enetunreach).toBe(1);
    expect(s.incidents.map((i) => [i.reason, i.severity])).toEqual([['udp_connect_enetunreach', 'info']]);
  });

  test('the next datagram after a failed connect opens a new flow and is answered again', () => {
    const s = makeStack();
    for (let i = 0; i < 2; i++) {
      s.stack.receive(udp(CLIENT6, UNROUTABLE6, 53), owner, i);
      s.sockets[i].h.onFailed('ENETUNREACH');
    }
    expect(unreachables(s.out)).toEqual(['v6:1/0', 'v6:1/0']);
  });

  test('a broadcast destination the kernel refuses (EACCES) ends the flow without an ICMP answer', () => {
    const s = makeStack();
    s.stack.receive(udp(CLIENT4, IpAddress.parse('10.202.0.255'), 7), owner, 0);
    s.sockets[0].h.onFailed('EACCES');
    expect(s.out).toEqual([]);
    expect(s.sockets[0].closed).toBe(true);
    expect(s.stack.counters.udp_connect_eacces).toBe(1);
  });

  test('where an admin allows multicast, no ICMP error is sent about a datagram to a group whose socket failed (RFC 1122 §3.2.2)', () => {
    const s = makeStack({ allow: ['224.0.0.0/4'] });
    s.stack.receive(udp(CLIENT4, MDNS4, 5353), owner, 0);
    s.sockets[0].h.onFailed('ENETUNREACH');
    s.stack.receive(udp(CLIENT4, MDNS4, 0), owner, 0);
    expect(s.out).toEqual([]);
  });

  test('UDP to port 0 gets port unreachable and no socket', () => {
    const s = makeStack();
    s.stack.receive(udp(CLIENT4, ORIGIN4, 0), owner, 0);
    expect(unreachables(s.out)).toEqual(['v4:3/3']);
    expect(s.sockets).toEqual([]);
    expect(s.stack.counters.udp_port_zero).toBe(1);
  });

  test('an egress factory that throws ends only that flow: counted as udp_flow_error, reported with the error', () => {
    let calls = 0;
    const s = makeStack({
      udpEgress: () => {
        calls++;
        throw new Error('injected: socket creation failed');
      },
    });
    expect(() => s.stack.receive(udp(CLIENT4, ORIGIN4, 53), owner, 0)).not.toThrow();
    expect(calls).toBe(1);
    expect(s.stack.counters.udp_flow_error).toBe(1);
    expect(s.incidents[0]).toMatchObject({ reason: 'udp_flow_error', severity: 'error', owner, flow: '10.77.0.2:5000 -> 192.0.2.10:53/udp' });
    expect((s.incidents[0].error as Error).message).toBe('injected: socket creation failed');
  });

  test('a reply that cannot be delivered (the tunnel side throws) ends that flow only', () => {
    const s = makeStack();
    s.stack.receive(udp(CLIENT4, ORIGIN4, 53), owner, 0);
    s.stack.receive(udp(CLIENT4, ORIGIN4, 53, 5001), owner, 0);
    s.breakClient(true);
    expect(() => s.sockets[0].h.onMessage(Buffer.from('answer'))).not.toThrow();
    s.breakClient(false);
    expect(s.sockets.map((x) => x.closed)).toEqual([true, false]);
    expect(s.stack.counters.udp_flow_error).toBe(1);
    s.sockets[1].h.onMessage(Buffer.from('answer'));
    expect(s.out.length).toBe(1);
  });

  test('near the file-descriptor limit a new UDP flow is refused with port unreachable, counted as fd_limit', () => {
    const s = makeStack({ room: () => false });
    s.stack.receive(udp(CLIENT4, ORIGIN4, 53), owner, 0);
    expect(s.sockets).toEqual([]);
    expect(unreachables(s.out)).toEqual(['v4:3/3']);
    expect(s.stack.counters.fd_limit).toBe(1);
    expect(s.incidents.map((i) => [i.reason, i.severity])).toEqual([['fd_limit', 'warn']]);
  });
});

describe('TCP flows end on failure, the client gets a reset, nothing is thrown', () => {
  const upstreamOf = (client: (c: Duplex) => void, abort: () => void = () => undefined): TcpFlowHandler => () => Promise.resolve({ attach: client, abort });

  test('near the file-descriptor limit a SYN is answered with RST and no upstream is opened', () => {
    let opened = 0;
    const s = makeStack({ room: () => false, tcpHandler: () => () => ((opened++), Promise.reject(new Error('not reached'))) });
    s.stack.receive(syn(ORIGIN4), owner, 0);
    expect(opened).toBe(0);
    expect(s.out.map(tcpOf).map((r) => r !== null && (r.flags & RST) !== 0)).toEqual([true]);
    expect(s.stack.counters.fd_limit).toBe(1);
  });

  test('a handler that throws at once is a bug: RST to the client, tcp_flow_error counted', async () => {
    const s = makeStack({ tcpHandler: () => () => {
      throw new TypeError('injected: handler bug');
    } });
    expect(() => s.stack.receive(syn(ORIGIN4), owner, 0)).not.toThrow();
    await settle();
    expect(s.out.map(tcpOf).some((r) => r !== null && (r.flags & RST) !== 0)).toBe(true);
    expect(s.stack.counters.tcp_flow_error).toBe(1);
    expect(s.stack.tcpFlows).toBe(0);
  });

  test('choosing a handler that throws resets the SYN', () => {
    const s = makeStack({ tcpHandler: () => {
      throw new Error('injected: policy bug');
    } });
    expect(() => s.stack.receive(syn(ORIGIN4), owner, 0)).not.toThrow();
    expect(s.out.map(tcpOf).map((r) => r !== null && (r.flags & RST) !== 0)).toEqual([true]);
    expect(s.stack.counters.tcp_flow_error).toBe(1);
  });

  test('a handler rejecting with something other than TcpOpenError is refused and counted as a bug', async () => {
    const s = makeStack({ tcpHandler: () => () => Promise.reject(new RangeError('injected')) });
    s.stack.receive(syn(ORIGIN4), owner, 0);
    await settle();
    expect(s.out.map(tcpOf).some((r) => r !== null && (r.flags & RST) !== 0)).toBe(true);
    expect(s.stack.counters.tcp_flow_error).toBe(1);
  });

  test('attaching the upstream throws: the upstream is aborted and the client reset', async () => {
    let aborted = false;
    const s = makeStack({ tcpHandler: () => upstreamOf(() => {
      throw new Error('injected: attach bug');
    }, () => (aborted = true)) });
    s.stack.receive(syn(ORIGIN4), owner, 0);
    await settle();
    expect(aborted).toBe(true);
    expect(s.out.map(tcpOf).some((r) => r !== null && (r.flags & RST) !== 0)).toBe(true);
    expect(s.stack.counters.tcp_flow_error).toBe(1);
    expect(s.stack.tcpFlows).toBe(0);
  });

  test('where an admin allows multicast, a SYN to a group that cannot be reached gets neither ICMP nor RST (RFC 1122 §4.2.3.10)', async () => {
    const s = makeStack({ allow: ['224.0.0.0/4'], tcpHandler: () => () => Promise.reject(new TcpOpenError('unreachable_net', 'ENETUNREACH')) });
    s.stack.receive(syn(MDNS4, 40000, 5353), owner, 0);
    await settle();
    expect(s.out).toEqual([]);
    expect(s.stack.tcpFlows).toBe(0);
  });

  describe('with a fault injected into the TCP endpoint', () => {
    afterEach(() => jest.restoreAllMocks());

    async function established(s: ReturnType<typeof makeStack>, port: number): Promise<number> {
      s.stack.receive(syn(ORIGIN4, port), owner, 0);
      await settle();
      const synAck = s.out.splice(0).map(tcpOf).find((r) => r !== null && (r.flags & (SYN | ACK)) === (SYN | ACK));
      const serverNxt = ((synAck?.seq ?? 0) + 1) >>> 0;
      s.stack.receive(ack(port, 1001, serverNxt), owner, 0);
      return serverNxt;
    }

    test('a segment that makes the endpoint throw resets that flow; the other flow keeps working', async () => {
      const streams: Duplex[] = [];
      const s = makeStack({ tcpHandler: () => upstreamOf((c) => streams.push(c.resume())) });
      const nxtA = await established(s, 40001);
      const nxtB = await established(s, 40002);
      const real = TcpEndpoint.prototype.onSegment;
      jest.spyOn(TcpEndpoint.prototype, 'onSegment').mockImplementation(function (this: TcpEndpoint, seg, now) {
        if (seg.srcPort === 40001) throw new Error('injected: endpoint bug');
        return real.call(this, seg, now);
      });
      expect(() => s.stack.receive(ack(40001, 1001, nxtA, Buffer.from('x')), owner, 0)).not.toThrow();
      expect(s.stack.counters.tcp_flow_error).toBe(1);
      expect(s.stack.tcpFlows).toBe(1);
      const got: Buffer[] = [];
      streams[1].on('data', (c: Buffer) => got.push(c));
      s.stack.receive(ack(40002, 1001, nxtB, Buffer.from('still here')), owner, 0);
      await settle();
      expect(Buffer.concat(got).toString()).toBe('still here');
    });

    test("the upstream writing into a flow whose endpoint throws does not throw into the upstream's event", async () => {
      const upstream = new PassThrough();
      const s = makeStack({ tcpHandler: () => upstreamOf((c) => upstream.pipe(c)) });
      await established(s, 40003);
      jest.spyOn(TcpEndpoint.prototype, 'write').mockImplementation(() => {
        throw new Error('injected: write bug');
      });
      expect(() => upstream.write(Buffer.from('response'))).not.toThrow();
      await settle();
      expect(s.stack.counters.tcp_flow_error).toBe(1);
      expect(s.stack.tcpFlows).toBe(0);
      expect(s.incidents.some((i) => i.reason === 'tcp_flow_error' && (i.error as Error).message === 'injected: write bug')).toBe(true);
    });
  });
});

test('a bug in the stack outside any flow drops the packet, counted as stack_error, and is not thrown', () => {
  const s = makeStack();
  const broken = udp(CLIENT4, ORIGIN4, 53);
  jest.spyOn(IpCidr.prototype, 'containsBytes').mockImplementationOnce(() => {
    throw new Error('injected: dispatch bug');
  });
  expect(() => s.stack.receive(broken, owner, 0)).not.toThrow();
  expect(s.stack.counters.stack_error).toBe(1);
  s.stack.receive(broken, owner, 0);
  expect(s.sockets.length).toBe(1);
  jest.restoreAllMocks();
});
