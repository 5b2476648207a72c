// The data path's records for the log-schema test, written by the real
// writers wired as the concentrator wires them: the TCP stack with the egress
// guard, the policy and buffer budgets (`flow`, `egress_denied`, `policy`,
// `flow_refused`), routed mode's packet split (`policy` for ICMPv6 and other
// IP protocols), the DNS forwarder against a loopback resolver (`dns`), and
// the session writer (`session`). No packet leaves for anything but loopback:
// the blocked destinations are blocked before any egress.
import { createSocket } from 'node:dgram';
import * as net from 'node:net';
import { TunEgress } from '../../../../netstack';
import { buildIcmpEcho, buildIpPacket, buildTcpPacket, buildUdpPacket, IpAddress, RST, SYN } from '../../../../netstack/wire';
import { DnsForwarder } from '../../../../vpn/dns';
import type { EgressBoundary } from '../../../../vpn/egress';
import { TcpPolicy, type FlowPolicy } from '../../../../vpn/flow_policy';
import type { UserLog } from '../../../../vpn/logs';
import { DnsLog, dnsQuestion } from '../../../../vpn/logs/dns_log';
import { SessionLog } from '../../../../vpn/logs/session_log';
import { routedPolicy } from '../../../../vpn/routed';
import { DENIAL_RECORDS_BURST } from '../../../../vpn/egress';
import { stackWithSinks } from '../../netstack/stack_harness';

export const SERVER4 = IpAddress.parse('10.77.0.1');
export const SERVER6 = IpAddress.parse('fd77::1');
const ALICE4 = IpAddress.parse('10.77.0.2');
const ALICE6 = IpAddress.parse('fd77::2');
const alice = { id: 'peer-key-alice', user: 'alice', device: 'laptop' };
/** egress.allow in schema.test.ts: the one loopback address flows may reach (the lab origin). */
export const LAB_ORIGIN = '127.0.0.2';
/** Blocked by the policy in schema.test.ts (rule test-net-closed); never reached. */
const TEST_NET4 = '192.0.2.1';
const TEST_NET6 = '2001:db8::1';
const GRE = 47;
const BUDGET = 1 << 20;

export interface DatapathContext {
  userLog: UserLog;
  /** Decides datagrams and routed packets; its record rate limit runs on `clock`. */
  policy: FlowPolicy;
  egress: EgressBoundary;
  /** The monotonic clock of the policy's and the guard's record rate limits (ms); advanced here. */
  clock: { now: number };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

let nextPort = 40000;
const syn = (src: IpAddress, dst: string, port: number, srcPort = nextPort++) =>
  buildTcpPacket(src, IpAddress.parse(dst), { srcPort, dstPort: port, seq: 1000, ack: 0, flags: SYN, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
const rst = (src: IpAddress, dst: string, port: number, srcPort: number) =>
  buildTcpPacket(src, IpAddress.parse(dst), { srcPort, dstPort: port, seq: 1001, ack: 0, flags: RST, window: 0, urgent: 0, options: {}, payload: Buffer.alloc(0) });
const udp = (src: IpAddress, dst: string, port: number) => buildUdpPacket(src, nextPort++, IpAddress.parse(dst), port, Buffer.from('x'));

/** The stack as the concentrator builds it: guard, policy, budgets and both stack records into the user log. */
async function stackRecords(ctx: DatapathContext): Promise<void> {
  const origin = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((resolve) => origin.listen(0, LAB_ORIGIN, resolve));
  const originPort = (origin.address() as net.AddressInfo).port;
  const tcpPolicy = new TcpPolicy({
    fp: ctx.policy,
    // Nothing here is inspected: a flow the policy sends to the engine is a mistake of the test.
    engine: { handle: () => { throw new Error('no flow of this test is inspected'); } },
    dial: () => Promise.reject(new Error('no flow of this test is inspected')),
    nonTls: 'block',
  });
  let ended = 0;
  const stack = stackWithSinks({
    localAddresses: [SERVER4, SERVER6],
    guard: ctx.egress.guard,
    onEgressDenied: ctx.egress.onStackDenial,
    fds: { hasRoom: () => true },
    toClient: () => undefined,
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 64 },
    udpEgress: () => { throw new Error('no datagram of this test leaves'); },
    tcp: { mtu: 1420, maxFlowsPerUser: 64, maxSynPerSecond: 1000, idleTimeoutMs: 60_000 },
    tcpHandler: (flow) => (flow.local ? null : tcpPolicy.handlerFor(flow)),
    admit: (owner, protocol, dst, dstPort) => ctx.policy.admitDatagram(owner, protocol, dst, dstPort),
    onFlowEnd: (r) => {
      ctx.userLog.writeRecord(r);
      ended++;
    },
    bufferLimits: { perUser: BUDGET, total: 64 * BUDGET },
    onBudgetRefusal: (r) => ctx.userLog.writeRecord(r),
  });
  try {
    // A flow the policy allows (rule lab-origin) to the lab origin, reset by the device: flow.
    const port = nextPort++;
    stack.receive(syn(ALICE4, LAB_ORIGIN, originPort, port), alice, performance.now());
    await wait(100);
    stack.receive(rst(ALICE4, LAB_ORIGIN, originPort, port), alice, performance.now());
    for (let i = 0; i < 100 && ended === 0; i++) await wait(10);
    if (ended === 0) throw new Error('the allowed flow did not end');
    // Refused destinations: loopback, and loopback through its IPv4-mapped form (via); a burst over the rate limit (suppressed).
    stack.receive(syn(ALICE4, '127.0.0.1', 22), alice, performance.now());
    stack.receive(syn(ALICE6, '::ffff:127.0.0.1', 22), alice, performance.now());
    for (let i = 0; i < DENIAL_RECORDS_BURST; i++) stack.receive(udp(ALICE4, '127.0.0.1', 53), alice, performance.now());
    ctx.clock.now += 1000;
    stack.receive(buildIcmpEcho(ALICE4, IpAddress.parse('127.0.0.1'), 'echo_request', 9, 1, Buffer.from('ping')), alice, performance.now());
    // Datagrams the policy blocks (rule test-net-closed): policy, udp and icmp.
    stack.receive(udp(ALICE4, TEST_NET4, 53), alice, performance.now());
    stack.receive(buildIcmpEcho(ALICE4, IpAddress.parse(TEST_NET4), 'echo_request', 7, 1, Buffer.from('ping')), alice, performance.now());
    // Alice over her buffer budget (held here as a DNS query in flight would hold it): her next flow is refused, flow_refused.
    if (!stack.budgets?.reserve(alice.user, BUDGET)) throw new Error('budget not reserved');
    stack.receive(syn(ALICE4, LAB_ORIGIN, originPort), alice, performance.now());
    stack.budgets.unreserve(alice.user, BUDGET);
  } finally {
    stack.close(performance.now());
    await new Promise((r) => origin.close(r));
  }
}

/** Routed mode's split: ICMPv6 and GRE to a blocked destination are `policy` records too (proto icmpv6, ip_47); a burst sets `suppressed`. */
function routedRecords(ctx: DatapathContext): void {
  const split = new TunEgress({
    localAddresses: [SERVER4, SERVER6],
    guard: ctx.egress.guard,
    blockedUdpPorts: [443],
    decide: routedPolicy(() => ctx.policy.holder.current, [443]),
    writeTun: () => {
      throw new Error('nothing of this test is routed');
    },
    toClient: () => undefined,
    toPeer: () => false,
    onBlocked: (b) => ctx.policy.routedBlock(b),
  });
  ctx.clock.now += 10_000;
  const echo6 = () => buildIcmpEcho(ALICE6, IpAddress.parse(TEST_NET6), 'echo_request', 3, 1, Buffer.from('ping'));
  const gre = () => buildIpPacket({ src: ALICE4, dst: IpAddress.parse(TEST_NET4), protocol: GRE, payloadLen: 8, writePayload: () => undefined });
  split.take(echo6(), alice);
  split.take(gre(), alice);
  for (let i = 0; i < DENIAL_RECORDS_BURST; i++) split.take(gre(), alice);
  ctx.clock.now += 1000;
  split.take(gre(), alice);
}

/** A query forwarded to a loopback resolver (NXDOMAIN), and one no upstream answers (TIMEOUT). */
async function dnsRecords(userLog: UserLog): Promise<void> {
  const server = createSocket('udp4');
  server.on('message', (m, r) => {
    const a = Buffer.from(m);
    a.writeUInt16BE(0x8183, 2);
    server.send(a, r.port, r.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: server.address().port }], timeoutMs: 2000 });
  const dead = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: silent.address().port }], timeoutMs: 300 });
  const dns = new DnsLog(userLog);
  const q = Buffer.from('123401000001000000000000046e6f7065047465737400001c0001', 'hex');
  try {
    for (const f of [fwd, dead]) {
      await new Promise<void>((resolve) => f.handle(q, 512, () => undefined, 'alice', (o) => {
        dns.exchange(alice, dnsQuestion(q), o, 1.5);
        resolve();
      }));
    }
    // Over the rate (1 a second, bursts of 2): the third is refused unrecorded; the next, a second later, says so.
    const limited = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: server.address().port }], maxQueriesPerSecondPerUser: 1, queryBurstPerUser: 2 });
    try {
      const asked = (): Promise<void> => new Promise((resolve) => limited.handle(q, 512, () => undefined, 'alice', (o) => {
        dns.exchange(alice, dnsQuestion(q), o, 1.5);
        resolve();
      }));
      await Promise.all([asked(), asked()]);
      limited.handle(q, 512, () => undefined, 'alice', () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await asked();
    } finally {
      limited.close();
    }
  } finally {
    fwd.close();
    dead.close();
    server.close();
    silent.close();
  }
}

function sessionRecords(userLog: UserLog): void {
  let mono = 0;
  const s = new SessionLog(userLog, Date.now, () => mono);
  s.handshake(alice, '198.51.100.7:40000');
  s.roamed(alice, '198.51.100.7:40000', '[2001:db8::7]:40000');
  // A flood of roams, then one after a quiet second: it carries how many were left out.
  for (let i = 0; i < 40; i++) s.roamed(alice, '[2001:db8::7]:40000', `[2001:db8::7]:${40001 + i}`);
  mono += 1000;
  s.roamed(alice, '[2001:db8::7]:40040', '[2001:db8::7]:40000');
  s.ended(alice, 'session_expired');
  s.handshake(alice, null);
  s.expired(alice);
}

export async function datapathRecords(ctx: DatapathContext): Promise<void> {
  await stackRecords(ctx);
  routedRecords(ctx);
  await dnsRecords(ctx.userLog);
  sessionRecords(ctx.userLog);
}
