// The concentrator lets the stack reuse its packets' memory once it has
// sealed them (NetStack.recyclePackets after each drain of the output). That
// is only safe if no flow keeps a packet past the drain that took it: here a
// bulk transfer runs through a stack driven that way, the client side reading
// each packet the moment it gets it, and every segment must arrive intact.
// The send queue is small, so its chunks also go back to the pool and are
// written again many times over during the transfer.
import { PassThrough, type Duplex } from 'node:stream';
import { ACK, ARENA_KEPT_SLABS, buildTcpPacket, IpAddress, isWireError, parseIpPacket, SYN, TcpRepr, TcpView, verifyUpperLayerChecksum } from '../../../netstack/wire';
import { labStackBase, stackWithSinks } from './stack_harness';

const ALICE = IpAddress.parse('10.77.0.2');
const ORIGIN = IpAddress.parse('192.0.2.10');
const owner = { id: 'alice-key', user: 'alice' };
const TOTAL = 4 * 1024 * 1024;
const flush = () => new Promise((r) => setImmediate(r));

/** Byte i of the transfer. */
const patternAt = (i: number): number => (i * 7 + (i >>> 11)) & 0xff;

test('a 4 MiB download with the packet memory recycled after every drain and a 256 KiB send queue: every segment intact, the slabs reused', async () => {
  const received = Buffer.alloc(TOTAL);
  let isn = -1;
  let highest = 0;
  let bad = 0;
  const slabs = new Set<ArrayBufferLike>();
  const stack = stackWithSinks({
    ...labStackBase(),
    recyclePackets: true,
    toClient: (packet) => {
      slabs.add(packet.buffer);
      const ip = parseIpPacket(packet);
      if (isWireError(ip) || !verifyUpperLayerChecksum(ip)) return void bad++;
      const view = TcpView.parse(ip.payload);
      if (isWireError(view)) return void bad++;
      const seg = TcpRepr.parse(view);
      if (isWireError(seg)) return void bad++;
      if (seg.flags & SYN) isn = seg.seq;
      else if (seg.payload.length > 0) {
        const at = (seg.seq - isn - 1) >>> 0;
        seg.payload.copy(received, at);
        highest = Math.max(highest, at + seg.payload.length);
      }
    },
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 4 },
    tcp: { mtu: 1420, maxFlowsPerUser: 4, maxSynPerSecond: 10, idleTimeoutMs: 60_000, msl: 100, sendBufferBytes: 256 * 1024 },
    tcpHandler: () => async () => ({ attach: (c: Duplex) => (stream = c), abort: () => undefined }),
    clock: () => now,
  });
  let stream: Duplex | null = null;
  let now = 0;
  const segment = (seq: number, ack: number, flags: number) =>
    buildTcpPacket(ALICE, ORIGIN, { srcPort: 40000, dstPort: 80, seq, ack, flags, window: 65535, urgent: 0, options: { windowScale: 7 }, payload: Buffer.alloc(0) });
  stack.receive(buildTcpPacket(ALICE, ORIGIN, { srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, flags: SYN, window: 65535, urgent: 0, options: { mss: 1380, windowScale: 7 }, payload: Buffer.alloc(0) }), owner, now);
  await flush();
  expect(isn).toBeGreaterThanOrEqual(0);
  stack.receive(segment(1001, (isn + 1) >>> 0, ACK), owner, ++now);
  expect(stream).not.toBeNull();

  const data = Buffer.alloc(TOTAL);
  for (let i = 0; i < TOTAL; i++) data[i] = patternAt(i);
  (stream as unknown as PassThrough).write(data);
  // The client acknowledges what it has, as a receiver with a big window does.
  for (let round = 0; round < 10_000 && highest < TOTAL; round++) {
    await flush();
    stack.receive(segment(1001, (isn + 1 + highest) >>> 0, ACK), owner, ++now);
  }
  expect(bad).toBe(0);
  expect(highest).toBe(TOTAL);
  expect(received.equals(data)).toBe(true);
  // ~3,000 segments went through a handful of slabs, not ~75 fresh ones.
  expect(slabs.size).toBeLessThanOrEqual(ARENA_KEPT_SLABS + 2);
});
