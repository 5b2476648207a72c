// The TCP flow table under many flows and at the end of flows: the close
// path (FIN both ways, no RST), late segments of closed flows, and the timer
// queue holding one entry per live flow.
import type { Duplex } from 'node:stream';
import type { FlowRecord, TcpFlowHandler } from '../../../netstack';
import { WakeQueue, type Wakeable } from '../../../netstack/wake_queue';
import {
  ACK, FIN, RST, SYN, IpAddress, buildTcpPacket, isWireError, parseIpPacket, TcpView, TcpRepr,
} from '../../../netstack/wire';
import { FINS_PER_TURN, type TcpEndpointStream } from '../../../netstack/tcp_stream';
import { labStackBase, stackWithSinks } from './stack_harness';

const CLIENT = IpAddress.parse('10.77.0.2');
const ORIGIN = IpAddress.parse('192.0.2.10');
const owner = { id: 'alice-key', user: 'alice' };
const MSL = 100;
const CLIENT_ISN = 1000;

type OriginMode = 'closes_when_client_closes' | 'stays_open';

/** A stack whose upstreams are in-process: each attached client stream is recorded. */
function makeStack(mode: OriginMode = 'closes_when_client_closes', maxFlows = 20_000) {
  const out: Buffer[] = [];
  const records: FlowRecord[] = [];
  const streams: Duplex[] = [];
  let now = 0;
  const handler: TcpFlowHandler = () => Promise.resolve({
    attach: (client: Duplex) => {
      streams.push(client);
      client.resume();
      // An origin that answers the client's FIN with its own (net.Server's default).
      if (mode === 'closes_when_client_closes') client.on('end', () => client.end());
    },
    abort: () => undefined,
  });
  const stack = stackWithSinks({
    ...labStackBase(),
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 4 },
    tcp: { mtu: 1420, maxFlowsPerUser: maxFlows, maxSynPerSecond: 1_000_000, idleTimeoutMs: 3_600_000, msl: MSL },
    tcpHandler: () => handler,
    onFlowEnd: (r) => records.push(r),
    clock: () => now,
  });
  /** Segments sent to the client since the last call. */
  const drain = (): TcpRepr[] => out.splice(0).map(tcpOf);
  return { stack, records, streams, drain, setNow: (t: number) => (now = t), now: () => now };
}

function tcpOf(packet: Buffer): TcpRepr {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) throw new Error(pkt.reason);
  const view = TcpView.parse(pkt.payload);
  if (isWireError(view)) throw new Error(view.reason);
  const repr = TcpRepr.parse(view);
  if (isWireError(repr)) throw new Error(repr.reason);
  return repr;
}

function segment(port: number, seq: number, ack: number, flags: number): Buffer {
  return buildTcpPacket(CLIENT, ORIGIN, { srcPort: port, dstPort: 80, seq, ack, flags, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
}

const settle = () => new Promise((r) => setImmediate(r));

/** Opens `ports` through the three-way handshake; returns each flow's server ISN + 1. */
async function establish(s: ReturnType<typeof makeStack>, ports: number[]): Promise<Map<number, number>> {
  for (const p of ports) s.stack.receive(segment(p, CLIENT_ISN, 0, SYN), owner, s.now());
  await settle();
  await settle();
  const serverNxt = new Map<number, number>();
  for (const r of s.drain()) {
    expect(r.flags).toBe(SYN | ACK);
    serverNxt.set(r.dstPort, (r.seq + 1) >>> 0);
  }
  for (const p of ports) s.stack.receive(segment(p, CLIENT_ISN + 1, serverNxt.get(p) as number, ACK), owner, s.now());
  return serverNxt;
}

/** The client closes first: FIN, then the ACK of the origin's FIN. */
async function closeFromClient(s: ReturnType<typeof makeStack>, ports: number[], serverNxt: Map<number, number>): Promise<TcpRepr[]> {
  for (const p of ports) s.stack.receive(segment(p, CLIENT_ISN + 1, serverNxt.get(p) as number, FIN | ACK), owner, s.now());
  // The FINs reach the origins a few dozen per event-loop turn (FinPacer): wait until every origin answered.
  const sent: TcpRepr[] = [];
  for (let turn = 0; turn < 2 || (turn < 10_000 && sent.filter((r) => r.flags & FIN).length < ports.length); turn++) {
    await settle();
    sent.push(...s.drain());
  }
  for (const r of sent) {
    if (r.flags & FIN) s.stack.receive(segment(r.dstPort, CLIENT_ISN + 2, (r.seq + 1) >>> 0, ACK), owner, s.now());
  }
  await settle();
  return sent;
}

describe('TcpFlowTable close path', () => {
  test('a flow the client closes ends with FIN and ACK both ways and no RST (RFC 9293 §3.6, passive close)', async () => {
    const s = makeStack();
    const nxt = await establish(s, [40000]);
    const sent = await closeFromClient(s, [40000], nxt);
    expect(sent.some((r) => r.flags & FIN)).toBe(true);
    expect(sent.filter((r) => r.flags & RST)).toEqual([]);
    expect(s.drain().filter((r) => r.flags & RST)).toEqual([]);
    expect(s.stack.tcpFlows).toBe(0);
    expect(s.records.map((r) => r.end)).toEqual(['fin']);
  });

  test("a flow whose FIN hand-off fails is ended with the error; the others' FINs still reach their origins", async () => {
    const s = makeStack();
    const nxt = await establish(s, [40010, 40011]);
    const failing = s.streams[0] as TcpEndpointStream;
    const errors: Error[] = [];
    failing.on('error', (e) => errors.push(e));
    jest.spyOn(failing, 'deliverPeerFin').mockImplementation(() => {
      throw new Error('hand-off failed');
    });
    const sent = await closeFromClient(s, [40011, 40010], nxt);
    expect(failing.destroyed).toBe(true);
    expect(errors.map((e) => e.message)).toEqual(['hand-off failed']);
    expect(sent.filter((r) => r.flags & FIN).map((r) => r.dstPort)).toContain(40011);
  });

  test("data in the same receive batch as the client's RST reaches the origin's side before the reset", async () => {
    const s = makeStack('stays_open');
    const nxt = await establish(s, [40020]);
    const stream = s.streams[0];
    const got: Buffer[] = [];
    stream.on('data', (d: Buffer) => got.push(d));
    stream.on('error', () => undefined);
    const alert = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30]); // TLS alert: fatal unknown_ca
    const ack = nxt.get(40020) as number;
    s.stack.beginBatch();
    s.stack.receive(buildTcpPacket(CLIENT, ORIGIN, { srcPort: 40020, dstPort: 80, seq: CLIENT_ISN + 1, ack, flags: ACK, window: 65535, urgent: 0, options: {}, payload: alert }), owner, s.now());
    s.stack.receive(segment(40020, CLIENT_ISN + 1 + alert.length, ack, RST | ACK), owner, s.now());
    s.stack.endBatch(s.now());
    await settle();
    expect(Buffer.concat(got)).toEqual(alert);
    expect(stream.destroyed).toBe(true);
  });

  test("the origin's stream ending both ways does not reset a connection still in LAST-ACK", async () => {
    const s = makeStack();
    const nxt = await establish(s, [40001]);
    s.stack.receive(segment(40001, CLIENT_ISN + 1, nxt.get(40001) as number, FIN | ACK), owner, 0);
    await settle();
    await settle();
    // Both directions of the Duplex ended, so Node destroyed it; the endpoint waits for the last ACK.
    expect(s.streams[0].destroyed).toBe(true);
    const sent = s.drain();
    expect(sent.filter((r) => r.flags & RST)).toEqual([]);
    expect(s.stack.tcpFlows).toBe(1);
  });

  test('late segments of a cleanly closed flow are absorbed, not answered with RST', async () => {
    const s = makeStack();
    const nxt = await establish(s, [40002]);
    await closeFromClient(s, [40002], nxt);
    s.drain();
    // A FIN retransmitted before our ACK reached the client, and a duplicate final ACK.
    s.stack.receive(segment(40002, CLIENT_ISN + 1, nxt.get(40002) as number, FIN | ACK), owner, 1);
    s.stack.receive(segment(40002, CLIENT_ISN + 2, (nxt.get(40002) as number) + 1, ACK), owner, 1);
    expect(s.drain()).toEqual([]);
    expect(s.stack.counters.tcp_late_segment).toBe(2);
    expect(s.stack.counters.tcp_unknown_flow).toBeUndefined();
  });

  test('after the grace (2*MSL) a segment for the old 4-tuple gets an RST again (RFC 9293 §3.10.7.1)', async () => {
    const s = makeStack();
    const nxt = await establish(s, [40003]);
    await closeFromClient(s, [40003], nxt);
    s.drain();
    s.setNow(2 * MSL + 1);
    s.stack.tick(2 * MSL + 1);
    s.stack.receive(segment(40003, CLIENT_ISN + 2, (nxt.get(40003) as number) + 1, ACK), owner, 2 * MSL + 1);
    expect(s.drain().map((r) => r.flags)).toEqual([RST]);
    expect(s.stack.counters.tcp_unknown_flow).toBe(1);
  });

  test('a new SYN on the 4-tuple of a just-closed flow opens a new flow at once', async () => {
    const s = makeStack();
    const nxt = await establish(s, [40004]);
    await closeFromClient(s, [40004], nxt);
    s.drain();
    s.stack.receive(segment(40004, CLIENT_ISN + 100_000, 0, SYN), owner, 1);
    await settle();
    expect(s.drain().map((r) => r.flags)).toEqual([SYN | ACK]);
    expect(s.stack.tcpFlows).toBe(1);
  });

  test('a flow reset by the client leaves no grace: a later segment gets an RST', async () => {
    const s = makeStack();
    const nxt = await establish(s, [40005]);
    s.stack.receive(segment(40005, CLIENT_ISN + 1, 0, RST), owner, 0);
    await settle();
    expect(s.stack.tcpFlows).toBe(0);
    s.drain();
    s.stack.receive(segment(40005, CLIENT_ISN + 1, nxt.get(40005) as number, ACK), owner, 1);
    expect(s.drain().map((r) => r.flags)).toEqual([RST]);
  });

  test('when many flows close at once, each FIN is ACKed on arrival and passed on to the origins FINS_PER_TURN per event-loop turn', async () => {
    const s = makeStack();
    const ports = Array.from({ length: 1000 }, (_, i) => 30_000 + i);
    const nxt = await establish(s, ports);
    let ended = 0;
    for (const stream of s.streams) stream.once('end', () => ended++);
    for (const p of ports) s.stack.receive(segment(p, CLIENT_ISN + 1, nxt.get(p) as number, FIN | ACK), owner, s.now());
    expect(s.drain().filter((r) => r.flags === ACK && r.ack === CLIENT_ISN + 2)).toHaveLength(1000);
    const perTurn: number[] = [];
    for (let turn = 0; turn < 1000 && ended < 1000; turn++) {
      const before = ended;
      await settle();
      perTurn.push(ended - before);
    }
    expect(ended).toBe(1000);
    expect(Math.max(...perTurn)).toBe(FINS_PER_TURN);
    expect(perTurn.filter((n) => n > 0)).toHaveLength(Math.ceil(1000 / FINS_PER_TURN));
  });

  test('10,000 flows closed by the client at once all end cleanly: no RST, no flow left, no timer left', async () => {
    const s = makeStack();
    const ports = Array.from({ length: 10_000 }, (_, i) => 20_000 + i);
    const nxt = await establish(s, ports);
    expect(s.stack.tcpFlows).toBe(10_000);
    const sent = await closeFromClient(s, ports, nxt);
    expect(sent.filter((r) => r.flags & FIN)).toHaveLength(10_000);
    expect(sent.filter((r) => r.flags & RST)).toHaveLength(0);
    expect(s.stack.tcpFlows).toBe(0);
    expect(s.records.filter((r) => r.end === 'fin')).toHaveLength(10_000);
    expect(s.stack.nextWakeAt()).toBeNull();
  });
});

describe('TcpFlowTable timers', () => {
  test('a flow rescheduled on every segment keeps one timer entry (no stale entries for the idle timeout)', async () => {
    const s = makeStack('stays_open');
    const nxt = await establish(s, [40010]);
    const serverNxt = nxt.get(40010) as number;
    // Window probes / pure ACKs move the idle deadline each time.
    for (let t = 1; t <= 1000; t++) {
      s.setNow(t);
      s.stack.receive(segment(40010, CLIENT_ISN + 1, serverNxt, ACK), owner, t);
    }
    expect(s.stack.nextWakeAt()).toBe(1000 + 3_600_000);
    s.setNow(1000 + 3_600_000);
    s.stack.tick(1000 + 3_600_000);
    expect(s.stack.tcpFlows).toBe(0);
    expect(s.records.map((r) => r.end)).toEqual(['timeout']);
  });
});

interface Item extends Wakeable {
  name: string;
}

function item(name: string): Item {
  return { name, wakeAt: Infinity, wakeIndex: -1 };
}

describe('WakeQueue', () => {
  test('pops items in deadline order, each once', () => {
    const q = new WakeQueue<Item>();
    const items = [30, 10, 50, 20, 40].map((t) => {
      const it = item(`t${t}`);
      q.schedule(it, t);
      return it;
    });
    expect(q.size).toBe(items.length);
    const popped: string[] = [];
    for (let it = q.popDue(100); it !== null; it = q.popDue(100)) popped.push(it.name);
    expect(popped).toEqual(['t10', 't20', 't30', 't40', 't50']);
    expect(q.size).toBe(0);
  });

  test('rescheduling moves an item instead of adding a second entry', () => {
    const q = new WakeQueue<Item>();
    const a = item('a');
    const b = item('b');
    q.schedule(a, 10);
    q.schedule(b, 20);
    q.schedule(a, 30);
    q.schedule(a, 5);
    q.schedule(a, 25);
    expect(q.size).toBe(2);
    expect(q.popDue(100)?.name).toBe('b');
    expect(q.popDue(100)?.name).toBe('a');
  });

  test('an item not yet due stays queued', () => {
    const q = new WakeQueue<Item>();
    q.schedule(item('later'), 50);
    expect(q.popDue(49)).toBeNull();
    expect(q.peekTime()).toBe(50);
  });

  test('cancel removes an item from anywhere in the heap and keeps the order of the rest', () => {
    const q = new WakeQueue<Item>();
    const all = Array.from({ length: 100 }, (_, i) => item(String(i)));
    // A fixed shuffle of deadlines.
    all.forEach((it, i) => q.schedule(it, (i * 37) % 100));
    for (let i = 0; i < 100; i += 3) q.cancel(all[i]);
    q.cancel(all[0]); // twice: no effect
    const times: number[] = [];
    for (let it = q.popDue(1000); it !== null; it = q.popDue(1000)) times.push((Number(it.name) * 37) % 100);
    expect(times).toHaveLength(100 - 34);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(all.every((it) => it.wakeIndex === -1)).toBe(true);
  });
});

describe('closing the flows of one owner (its tunnel was cut)', () => {
  test("every TCP flow of that owner ends at once with the reason in its record, others' flows go on", async () => {
    const s = makeStack('stays_open');
    await establish(s, [5001, 5002]);
    const bob = { id: 'bob-key', user: 'bob' };
    s.stack.receive(segment(5003, CLIENT_ISN, 0, SYN), bob, s.now());
    await settle();
    await settle();
    s.drain();
    expect(s.stack.closeFlowsOf(owner.id, 'tunnel_disabled', s.now())).toEqual({ tcp: 2, udp: 0 });
    expect(s.records.map((r) => [r.user, r.srcPort, r.end])).toEqual([['alice', 5001, 'tunnel_disabled'], ['alice', 5002, 'tunnel_disabled']]);
    expect(s.stack.tcpFlows).toBe(1);
    await settle();
    expect(s.streams.slice(0, 2).every((st) => st.destroyed)).toBe(true);
  });

  test('nothing is sent to the cut client: no RST into a tunnel that is gone', async () => {
    const s = makeStack('stays_open');
    await establish(s, [5001]);
    s.drain();
    s.stack.closeFlowsOf(owner.id, 'tunnel_removed', s.now());
    await settle();
    expect(s.drain()).toEqual([]);
  });
});

describe('ACKs of a receive batch', () => {
  function data(port: number, seq: number, ack: number, len: number): Buffer {
    return buildTcpPacket(CLIENT, ORIGIN, { srcPort: port, dstPort: 80, seq, ack, flags: ACK, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(len, 0x61) });
  }

  test('between beginBatch and endBatch each flow sends one ACK for all its in-order segments, at the end', async () => {
    const s = makeStack('stays_open');
    const nxt = await establish(s, [40100, 40101]);
    s.stack.beginBatch();
    for (let i = 0; i < 8; i++) {
      for (const p of [40100, 40101]) s.stack.receive(data(p, CLIENT_ISN + 1 + i * 1000, nxt.get(p) as number, 1000), owner, s.now());
    }
    expect(s.drain()).toEqual([]);
    s.stack.endBatch(s.now());
    const acks = s.drain();
    expect(acks.map((r) => [r.dstPort, r.ack])).toEqual([[40100, CLIENT_ISN + 8001], [40101, CLIENT_ISN + 8001]]);
  });

  test('without a batch every second segment is acknowledged at once, as before', async () => {
    const s = makeStack('stays_open');
    const nxt = await establish(s, [40102]);
    for (let i = 0; i < 4; i++) s.stack.receive(data(40102, CLIENT_ISN + 1 + i * 1000, nxt.get(40102) as number, 1000), owner, s.now());
    expect(s.drain().map((r) => r.ack)).toEqual([CLIENT_ISN + 2001, CLIENT_ISN + 4001]);
  });
});
