// Buffer budgets: what one user's flows hold is bounded, and a user at the
// limit is slowed (backpressure, refused flows) without touching anyone else.
import type { Duplex } from 'node:stream';
import { BufferBudgets, NetStack, type BudgetRefusalRecord, type TcpFlowHandler } from '../../../netstack';
import {
  ACK, RST, SYN, IpAddress, buildTcpPacket, isWireError, parseIpPacket, TcpView, type TcpOptions, TcpRepr,
} from '../../../netstack/wire';
import { SEND_CHUNK_BYTES } from '../../../netstack/tcp/send_buffer';
import { labStackBase, stackWithSinks } from './stack_harness';

const KiB = 1024;
const alice = { id: 'alice-key', user: 'alice' };
const bob = { id: 'bob-key', user: 'bob' };
const CLIENT = { alice: IpAddress.parse('10.77.0.2'), bob: IpAddress.parse('10.77.0.3') };
const ORIGIN = IpAddress.parse('192.0.2.10');
const ISN = 1000;

describe('BufferBudgets', () => {
  test("room is what is left of the user's limit or of the concentrator's, whichever is less", () => {
    const b = new BufferBudgets({ perUser: 100, total: 150 });
    const a = b.take('alice');
    const o = b.take('bob');
    a.add(60);
    expect(a.room).toBe(40);
    o.add(70);
    expect(a.room).toBe(20);
    expect(a.exhausted).toBeNull();
    o.add(30);
    expect(o.exhausted).toBe('user');
    expect(a.exhausted).toBe('concentrator');
  });

  test('a waiter is woken when its user has room again, not when another user frees bytes', () => {
    const b = new BufferBudgets({ perUser: 256 * KiB, total: 10_000 * KiB });
    const a = b.take('alice');
    const o = b.take('bob');
    a.add(256 * KiB);
    o.add(100 * KiB);
    let woken = 0;
    b.wait({ account: a, wake: () => woken++ });
    o.add(-100 * KiB);
    b.runWakes(0);
    expect(woken).toBe(0);
    a.add(-1);
    b.runWakes(0);
    expect(woken).toBe(0); // one byte is not worth a wake-up
    a.add(-64 * KiB);
    b.runWakes(0);
    expect(woken).toBe(1);
    a.add(-1000);
    b.runWakes(0);
    expect(woken).toBe(1); // once per wait()
  });

  test("a user's thousands of waiting flows, still over budget, are not looked at when another user frees bytes", () => {
    const b = new BufferBudgets({ perUser: 256 * KiB, total: 10_000 * KiB });
    const a = b.take('alice');
    const o = b.take('bob');
    a.add(256 * KiB);
    let looked = 0;
    let woken = 0;
    for (let i = 0; i < 4096; i++) {
      b.wait({
        get account() {
          looked++;
          return a;
        },
        wake: () => woken++,
      });
    }
    const afterWaiting = looked;
    for (let i = 0; i < 100; i++) {
      o.add(1000);
      o.add(-1000);
      b.runWakes(i);
    }
    expect(looked).toBe(afterWaiting);
    expect(woken).toBe(0);
    // Alice's own room back: her flows resume.
    a.add(-128 * KiB);
    b.runWakes(100);
    expect(woken).toBe(4096);
  });

  test("a waiter short of the concentrator's room (not its own) is woken when another user frees bytes", () => {
    const b = new BufferBudgets({ perUser: 256 * KiB, total: 300 * KiB });
    const a = b.take('alice');
    const o = b.take('bob');
    o.add(250 * KiB);
    a.add(50 * KiB);
    expect(a.exhausted).toBe('concentrator');
    let woken = 0;
    b.wait({ account: a, wake: () => woken++ });
    o.add(-200 * KiB);
    b.runWakes(0);
    expect(woken).toBe(1);
  });

  test('reserve() holds bytes outside flows (DNS queries) only while there is room', () => {
    const b = new BufferBudgets({ perUser: 1000, total: 10_000 });
    expect(b.reserve('alice', 800)).toBe(true);
    expect(b.reserve('alice', 300)).toBe(false);
    b.unreserve('alice', 800);
    expect(b.used).toBe(0);
    expect(b.usage()).toEqual({});
  });

  test("refusals are logged at most once per 10 s per user, the next record counting those in between", () => {
    const b = new BufferBudgets({ perUser: 10, total: 100 });
    const a = b.peek('alice');
    const first = a.refusal(alice, 'tcp', '192.0.2.10', 80, 'user', 0);
    expect(first).toMatchObject({ type: 'flow_refused', reason: 'user_buffer_budget', proto: 'tcp', limitBytes: 10, refusedSinceLast: 0 });
    expect(a.refusal(alice, 'tcp', '192.0.2.10', 80, 'user', 5000)).toBeNull();
    expect(a.refusal(alice, 'udp', '192.0.2.10', 53, 'user', 6000)).toBeNull();
    expect(a.refusal(alice, 'tcp', '192.0.2.10', 80, 'user', 10_000)?.refusedSinceLast).toBe(2);
  });
});

// ---- through the stack: in-process upstreams, a hand-driven client ----

interface Harness {
  stack: NetStack;
  streams: Map<string, Duplex>;
  refusals: BudgetRefusalRecord[];
  drain(): TcpRepr[];
}

function makeStack(perUser: number, total = 1 << 30): Harness {
  const out: Buffer[] = [];
  const streams = new Map<string, Duplex>();
  const refusals: BudgetRefusalRecord[] = [];
  const handler: TcpFlowHandler = (info) => Promise.resolve({
    attach: (client: Duplex) => {
      client.pause(); // a slow upstream: reads nothing until the test says so
      streams.set(`${info.owner.user}:${info.clientPort}`, client);
    },
    abort: () => undefined,
  });
  const stack = stackWithSinks({
    ...labStackBase(),
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 4 },
    tcp: { mtu: 1420, maxFlowsPerUser: 100, maxSynPerSecond: 1_000_000, idleTimeoutMs: 3_600_000 },
    tcpHandler: () => handler,
    clock: () => 0,
    bufferLimits: { perUser, total },
    onBudgetRefusal: (r) => refusals.push(r),
  });
  return { stack, streams, refusals, drain: () => out.splice(0).map(tcpOf) };
}

function tcpOf(packet: Buffer): TcpRepr {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) throw new Error(pkt.reason);
  const view = TcpView.parse(pkt.payload);
  const repr = isWireError(view) ? view : TcpRepr.parse(view);
  if (isWireError(repr)) throw new Error(repr.reason);
  return repr;
}

type Who = 'alice' | 'bob';

function send(h: Harness, who: Who, port: number, seq: number, ack: number, flags: number, payload = Buffer.alloc(0), options: TcpOptions = {}): void {
  const pkt = buildTcpPacket(CLIENT[who], ORIGIN, { srcPort: port, dstPort: 80, seq, ack, flags, window: 65535, urgent: 0, options, payload });
  h.stack.receive(pkt, who === 'alice' ? alice : bob, 0);
}

const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** Three-way handshake (SACK permitted); returns the server's next sequence number. */
async function open(h: Harness, who: Who, port: number): Promise<number> {
  send(h, who, port, ISN, 0, SYN, Buffer.alloc(0), { mss: 1360, sackPermitted: true });
  await settle();
  const synAck = h.drain().find((r) => r.dstPort === port && r.flags === (SYN | ACK));
  if (synAck === undefined) throw new Error(`no SYN-ACK for ${who}:${port}`);
  const nxt = (synAck.seq + 1) >>> 0;
  send(h, who, port, ISN + 1, nxt, ACK);
  await settle();
  return nxt;
}

/**
 * The upstream of alice's flow offers 8 MiB in 64 KiB chunks, as pipe() from a
 * socket does (writing on until write() says stop, again on 'drain'), while
 * the client acknowledges nothing.
 */
async function fillBudget(h: Harness, port: number): Promise<{ stream: Duplex; accepted: () => number; nxt: number }> {
  const nxt = await open(h, 'alice', port);
  const stream = h.streams.get(`alice:${port}`) as Duplex;
  let accepted = 0;
  let offered = 0;
  const chunk = Buffer.alloc(64 * KiB, 0x61);
  const pump = () => {
    while (offered < 8192 * KiB) {
      offered += chunk.length;
      if (!stream.write(chunk, () => (accepted += chunk.length))) return;
    }
  };
  stream.on('drain', pump);
  pump();
  await settle();
  return { stream, accepted: () => accepted, nxt };
}

describe('buffer budgets in the stack', () => {
  test("an upstream writing faster than the client reads fills the user's budget, then waits: the user's buffers stay bounded", async () => {
    const h = makeStack(512 * KiB);
    const { stream, accepted } = await fillBudget(h, 40000);
    const used = h.stack.budgets?.usage().alice ?? 0;
    expect(used).toBeGreaterThanOrEqual(512 * KiB);
    // Beyond the budget: at most the stream's high-water mark and the chunk being written.
    expect(used).toBeLessThanOrEqual(512 * KiB + 2 * 64 * KiB);
    expect(accepted()).toBeLessThan(4096 * KiB);
    expect(stream.writableNeedDrain).toBe(true);
  });

  test('writes resume when the client acknowledges data and the budget has room again (backpressure, not loss)', async () => {
    const h = makeStack(512 * KiB);
    const { accepted } = await fillBudget(h, 40000);
    const before = accepted();
    // The client acknowledges what it received, round after round (slow start sends more each time).
    for (let round = 0; round < 50 && accepted() === before; round++) {
      const sent = h.drain().filter((r) => r.payload.length > 0);
      if (sent.length === 0) break;
      send(h, 'alice', 40000, ISN + 1, Math.max(...sent.map((r) => (r.seq + r.payload.length) >>> 0)), ACK);
      await settle();
    }
    expect(accepted()).toBeGreaterThan(before);
  });

  test('a new flow of a user over budget is refused with RST, counted and logged; another user opens flows as usual', async () => {
    const h = makeStack(512 * KiB);
    await fillBudget(h, 40000);
    send(h, 'alice', 40001, ISN, 0, SYN);
    await settle();
    expect(h.drain().find((r) => r.dstPort === 40001)?.flags).toBe(RST | ACK);
    expect(h.stack.counters.tcp_flow_refused_user_budget).toBe(1);
    expect(h.refusals).toEqual([expect.objectContaining({ type: 'flow_refused', user: 'alice', reason: 'user_buffer_budget', proto: 'tcp', dstPort: 80 })]);
    await open(h, 'bob', 40001);
    expect(h.stack.tcpFlows).toBe(2);
  });

  test('out-of-order data is not stored while the user is over budget (no SACK block for it)', async () => {
    const h = makeStack(512 * KiB);
    const a = await fillBudget(h, 40000);
    const bobNxt = await open(h, 'bob', 40002);
    h.drain();
    // The same segment beyond a hole, from each user.
    send(h, 'alice', 40000, ISN + 1 + 1000, a.nxt, ACK, Buffer.alloc(500, 1));
    send(h, 'bob', 40002, ISN + 1 + 1000, bobNxt, ACK, Buffer.alloc(500, 1));
    const acks = h.drain();
    expect(acks.find((r) => r.dstPort === 40000)?.options.sack).toBeUndefined();
    expect(acks.find((r) => r.dstPort === 40002)?.options.sack).toEqual([[ISN + 1 + 1000, ISN + 1 + 1500]]);
  });

  test('in-order data from a client over budget is not queued: the ACK does not move and the window does not open', async () => {
    const h = makeStack(512 * KiB);
    const nxt = await (async () => {
      const n = await open(h, 'alice', 40003);
      await fillBudget(h, 40000);
      return n;
    })();
    h.drain();
    send(h, 'alice', 40003, ISN + 1, nxt, ACK, Buffer.alloc(1000, 2));
    const ack = h.drain().find((r) => r.dstPort === 40003);
    expect(ack?.ack).toBe(ISN + 1);
  });

  test("one user's full budget does not slow another user's transfer", async () => {
    const h = makeStack(512 * KiB);
    await fillBudget(h, 40000);
    const nxt = await open(h, 'bob', 40004);
    const up = h.streams.get('bob:40004') as Duplex;
    up.resume();
    const received: Buffer[] = [];
    up.on('data', (c: Buffer) => received.push(c));
    let seq = ISN + 1;
    for (let i = 0; i < 200; i++) {
      send(h, 'bob', 40004, seq, nxt, ACK, Buffer.alloc(1360, i & 0xff));
      seq += 1360;
    }
    await settle();
    expect(Buffer.concat(received).length).toBe(200 * 1360);
    expect(h.drain().filter((r) => r.dstPort === 40004).pop()?.ack).toBe(seq >>> 0);
  });

  test('a send queue is charged the chunks it holds: small unacknowledged writes on many flows cannot pin more memory than the budget', async () => {
    const chunks = 8 * SEND_CHUNK_BYTES;
    const h = makeStack(chunks + 1024); // room for eight chunks, not for a ninth
    const ports = Array.from({ length: 12 }, (_, i) => 41000 + i);
    const nxt = new Map<number, number>();
    for (const port of ports) nxt.set(port, await open(h, 'alice', port));
    h.drain();
    const accepted = new Set<number>();
    for (const port of ports) h.streams.get(`alice:${port}`)?.write(Buffer.from('x'), () => accepted.add(port));
    await settle();
    // Each byte sits in a chunk of its own until the client acknowledges it.
    expect(accepted.size).toBe(8);
    const used = h.stack.budgets?.usage().alice ?? 0;
    // Eight chunks, and a byte or so per flow that a stream's buffer also counts until its next flush.
    expect(used).toBeGreaterThanOrEqual(chunks);
    expect(used).toBeLessThanOrEqual(chunks + 12);
    // The client acknowledges six bytes: their chunks go back, and the four waiting writes go on.
    const sent = h.drain().filter((r) => r.payload.length === 1);
    expect(sent).toHaveLength(8);
    for (const seg of sent.slice(0, 6)) send(h, 'alice', seg.dstPort, ISN + 1, (seg.seq + 1) >>> 0, ACK);
    await settle();
    expect(accepted.size).toBe(12);
    const after = h.stack.budgets?.usage().alice ?? 0;
    expect(after).toBeGreaterThanOrEqual(6 * SEND_CHUNK_BYTES);
    expect(after).toBeLessThanOrEqual(6 * SEND_CHUNK_BYTES + 12);
  });

  test("when flows end, the user's account returns to zero", async () => {
    const h = makeStack(512 * KiB);
    await fillBudget(h, 40000);
    send(h, 'alice', 40000, ISN + 1, 0, RST);
    await settle();
    expect(h.stack.tcpFlows).toBe(0);
    expect(h.stack.budgets?.used).toBe(0);
    expect(h.stack.budgets?.usage()).toEqual({});
  });
});
