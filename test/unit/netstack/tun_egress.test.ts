// Routed mode's split of tunnel traffic (netstack/egress/tun_egress.ts): what
// the stack must keep (its own services, refusals, host addresses an admin
// opened, QUIC, fragments, flows for the TLS engine), what goes to the TUN
// unchanged (any protocol, the TTL as sent), how a policy block is answered,
// and packets from the TUN going only to the peer that owns their destination.
import { TunEgress, type FlowOwner, type PolicyBlock, type RoutedVerdict } from '../../../netstack';
import {
  buildIcmpEcho, buildIcmpUnreachable, buildIpPacket, buildTcpPacket, buildUdpPacket, IpAddress, Ipv4View, isWireError, parseIpPacket, TcpRepr,
  TcpView, ACK, RST, SYN,
} from '../../../netstack/wire';
import { ALICE4, ALICE6, icmpOf, SERVER4, SERVER6, testGuard } from './egress_fixtures';

const ORIGIN4 = IpAddress.parse('10.20.0.5');
const ORIGIN6 = IpAddress.parse('fd20::5');
const HOST4 = IpAddress.parse('192.0.2.5');
const owner: FlowOwner = { id: 'alice-key', user: 'alice' };

const ROUTE: RoutedVerdict = { action: 'route', rule: '' };
const TERMINATE: RoutedVerdict = { action: 'terminate', rule: '' };

interface Harness {
  egress: TunEgress;
  tun: Buffer[][];
  toClient: Buffer[];
  toPeer: Buffer[];
  blocks: Array<Omit<PolicyBlock, 'dst' | 'owner'> & { dst: string }>;
  asked: Array<{ protocol: number; dst: string; dstPort: number }>;
  /** Runs the deferred flush (the end of a burst). */
  endBurst(): void;
}

function harness(opts: { decide?: (protocol: number, dstPort: number) => RoutedVerdict; allow?: string[]; peers?: string[]; tunTakes?: number } = {}): Harness {
  const h: Omit<Harness, 'egress' | 'endBurst'> = { tun: [], toClient: [], toPeer: [], blocks: [], asked: [] };
  let deferred: (() => void) | null = null;
  const peers = new Set(opts.peers ?? [ALICE4.toString(), ALICE6.toString()]);
  const egress = new TunEgress({
    localAddresses: [SERVER4, SERVER6],
    guard: testGuard(opts.allow),
    blockedUdpPorts: [443],
    decide: (_owner, protocol, dst, dstPort) => {
      h.asked.push({ protocol, dst: IpAddress.fromBytes(dst).toString(), dstPort });
      return opts.decide?.(protocol, dstPort) ?? ROUTE;
    },
    writeTun: (packets, count) => {
      h.tun.push(packets.slice(0, count));
      return Math.min(count, opts.tunTakes ?? count);
    },
    toClient: (p) => h.toClient.push(p),
    toPeer: (p) => {
      const pkt = parseIpPacket(p);
      if (isWireError(pkt) || !peers.has(IpAddress.fromBytes(pkt.dst).toString())) return false;
      h.toPeer.push(p);
      return true;
    },
    onBlocked: (b) => h.blocks.push({ protocol: b.protocol, dst: IpAddress.fromBytes(b.dst).toString(), dstPort: b.dstPort, rule: b.rule }),
    defer: (fn) => {
      deferred = fn;
    },
  });
  return {
    ...h,
    egress,
    endBurst: () => {
      const fn = deferred;
      deferred = null;
      fn?.();
    },
  };
}

function tcp(src: IpAddress, dst: IpAddress, dstPort: number, flags = SYN, ack = 0): Buffer {
  return buildTcpPacket(src, dst, { srcPort: 40000, dstPort, seq: 100, ack, flags, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
}

function udp(src: IpAddress, dst: IpAddress, dstPort: number): Buffer {
  return buildUdpPacket(src, 40001, dst, dstPort, Buffer.from('hello'));
}

/** An IP packet of another protocol (47: GRE) with a few payload bytes. */
function gre(src: IpAddress, dst: IpAddress): Buffer {
  return buildIpPacket({ src, dst, protocol: 47, ttl: 7, payloadLen: 8, writePayload: (b) => b.writeUInt32BE(0x00000800, 0) });
}

describe('routed mode: what stays with the stack', () => {
  test.each([
    ['DNS and ping to the concentrator itself', () => udp(ALICE4, SERVER4, 53)],
    ['TCP to the concentrator (local services)', () => tcp(ALICE6, SERVER6, 80)],
    ['a destination the egress guard refuses (loopback), to be refused, answered and logged by the one refusal path', () => tcp(ALICE4, IpAddress.parse('127.0.0.1'), 22)],
    ['cloud metadata (link-local)', () => udp(ALICE4, IpAddress.parse('169.254.169.254'), 80)],
    ["another peer's tunnel address", () => buildIcmpEcho(ALICE4, IpAddress.parse('10.77.0.3'), 'echo_request', 1, 1, Buffer.alloc(8))],
    ['QUIC to an inspected port (refused there with port unreachable)', () => udp(ALICE6, ORIGIN6, 443)],
    ['a packet that does not parse', () => Buffer.from([0x45, 0, 0])],
  ])('%s goes to the stack, never to the TUN, and asks no policy', (_what, make) => {
    const h = harness();
    expect(h.egress.take(make(), owner)).toBe(false);
    h.endBurst();
    expect(h.tun).toEqual([]);
    expect(h.asked).toEqual([]);
  });

  test('an IP fragment goes to the stack (dropped there as in socket mode): it carries no port a policy could judge', () => {
    const h = harness();
    const frag = udp(ALICE4, ORIGIN4, 53);
    const v = Ipv4View.unchecked(frag);
    v.moreFragments = true;
    v.fillChecksum();
    expect(h.egress.take(frag, owner)).toBe(false);
    expect(h.asked).toEqual([]);
  });

  test("a host address an admin opened with egress.allow is reached through the stack's sockets, never the TUN (the kernel never delivers TUN traffic to its host)", () => {
    const h = harness({ allow: ['192.0.2.5/32'] });
    expect(h.egress.take(tcp(ALICE4, HOST4, 8080), owner)).toBe(false);
    expect(h.egress.take(udp(ALICE6, IpAddress.parse('::ffff:192.0.2.5'), 53), owner)).toBe(false);
    expect(h.asked).toEqual([]);
  });

  test('a TCP flow the policy sends to the TLS engine is terminated by the stack, and counted', () => {
    const h = harness({ decide: (protocol, port) => (protocol === 6 && port === 443 ? TERMINATE : ROUTE) });
    expect(h.egress.take(tcp(ALICE4, ORIGIN4, 443), owner)).toBe(false);
    expect(h.egress.take(tcp(ALICE4, ORIGIN4, 22), owner)).toBe(true);
    expect(h.asked).toEqual([{ protocol: 6, dst: '10.20.0.5', dstPort: 443 }, { protocol: 6, dst: '10.20.0.5', dstPort: 22 }]);
    expect(h.egress.counters.terminated).toBe(1);
  });
});

describe('routed mode: what goes to the TUN', () => {
  test('TCP, UDP, ICMP and other IP protocols, IPv4 and IPv6, are written unchanged (TTL as sent: the kernel decrements it when it forwards)', () => {
    const h = harness();
    const packets = [tcp(ALICE4, ORIGIN4, 22), udp(ALICE6, ORIGIN6, 53), buildIcmpEcho(ALICE4, ORIGIN4, 'echo_request', 9, 1, Buffer.alloc(16)), gre(ALICE4, ORIGIN4)];
    const copies = packets.map((p) => Buffer.from(p));
    for (const p of packets) expect(h.egress.take(p, owner)).toBe(true);
    expect(h.tun).toEqual([]);
    h.endBurst();
    expect(h.tun).toEqual([copies]);
    expect(h.asked.map((a) => [a.protocol, a.dstPort])).toEqual([[6, 22], [17, 53], [1, -1], [47, -1]]);
    expect(h.egress.counters.to_tun).toBe(4);
  });

  test('a burst is written in batches of at most 64 packets per call', () => {
    const h = harness();
    for (let i = 0; i < 130; i++) h.egress.take(udp(ALICE4, ORIGIN4, 5000 + i), owner);
    h.endBurst();
    expect(h.tun.map((b) => b.length)).toEqual([64, 64, 2]);
  });

  test('packets the TUN does not take (its queue full, the interface down) are counted as dropped', () => {
    const h = harness({ tunTakes: 1 });
    h.egress.take(udp(ALICE4, ORIGIN4, 1), owner);
    h.egress.take(udp(ALICE4, ORIGIN4, 2), owner);
    h.endBurst();
    expect(h.egress.counters).toMatchObject({ to_tun: 1, to_tun_dropped: 1 });
  });
});

describe('routed mode: a policy block', () => {
  const block: RoutedVerdict = { action: 'block', rule: 'no-telnet' };

  test('a TCP SYN gets a reset from the destination at once, and the block is reported with its rule', () => {
    const h = harness({ decide: () => block });
    expect(h.egress.take(tcp(ALICE4, ORIGIN4, 23), owner)).toBe(true);
    h.endBurst();
    expect(h.tun).toEqual([]);
    expect(h.toClient).toHaveLength(1);
    const pkt = parseIpPacket(h.toClient[0]);
    if (isWireError(pkt)) throw new Error(pkt.reason);
    expect(IpAddress.fromBytes(pkt.src).toString()).toBe('10.20.0.5');
    const view = TcpView.parse(pkt.payload);
    const seg = isWireError(view) ? view : TcpRepr.parse(view);
    if (isWireError(seg)) throw new Error(seg.reason);
    expect(seg).toMatchObject({ srcPort: 23, dstPort: 40000, flags: RST | ACK, ack: 101 });
    expect(h.blocks).toEqual([{ protocol: 6, dst: '10.20.0.5', dstPort: 23, rule: 'no-telnet' }]);
    expect(h.egress.counters.policy_block).toBe(1);
  });

  test('a reset is never answered with a reset', () => {
    const h = harness({ decide: () => block });
    h.egress.take(tcp(ALICE4, ORIGIN4, 23, RST), owner);
    expect(h.toClient).toEqual([]);
    expect(h.blocks).toHaveLength(1);
  });

  test('UDP and echo requests get ICMP administratively prohibited from the concentrator, IPv4 and IPv6', () => {
    const h = harness({ decide: () => block });
    h.egress.take(udp(ALICE4, ORIGIN4, 69), owner);
    h.egress.take(buildIcmpEcho(ALICE6, ORIGIN6, 'echo_request', 3, 1, Buffer.alloc(8)), owner);
    expect(h.toClient.map(icmpOf)).toEqual([
      { src: '10.77.0.1', dst: '10.77.0.2', type: 'dst_unreachable', code: 13 },
      { src: 'fd77::1', dst: 'fd77::2', type: 'dst_unreachable', code: 1 },
    ]);
  });

  test('an ICMP error and other protocols are dropped without an answer (nobody waits on them)', () => {
    const h = harness({ decide: () => block });
    const portUnreachable = buildIcmpUnreachable(ALICE4, ORIGIN4, 'port', udp(ORIGIN4, ALICE4, 5353));
    h.egress.take(portUnreachable, owner);
    h.egress.take(gre(ALICE4, ORIGIN4), owner);
    expect(h.toClient).toEqual([]);
    expect(h.blocks.map((b) => b.protocol)).toEqual([1, 47]);
  });
});

describe('routed mode: packets from the TUN', () => {
  test('go to the peer owning the destination (cryptokey routing)', () => {
    const h = harness();
    h.egress.fromTun(udp(ORIGIN4, ALICE4, 40001));
    h.egress.fromTun(tcp(ORIGIN6, ALICE6, 40000, SYN | ACK, 101));
    expect(h.toPeer).toHaveLength(2);
    expect(h.egress.counters.from_tun).toBe(2);
  });

  test('are dropped and counted when no peer owns the destination', () => {
    const h = harness();
    h.egress.fromTun(udp(ORIGIN4, IpAddress.parse('10.77.0.99'), 40001));
    expect(h.toPeer).toEqual([]);
    expect(h.egress.counters.from_tun_no_peer).toBe(1);
  });

  test('are dropped and counted when too short to carry an IP header', () => {
    const h = harness();
    for (const p of [Buffer.alloc(0), Buffer.from([0x45, 0, 0, 20]), Buffer.alloc(39, 0x60), Buffer.alloc(40, 0x10)]) h.egress.fromTun(p);
    expect(h.egress.counters.from_tun_invalid).toBe(4);
    expect(h.toPeer).toEqual([]);
  });
});
