// The batched UDP socket (vpn/edge/udp_native) and the edge that uses it. Loopback
// only. The WireGuard data path relies on: every datagram delivered once,
// intact, with its true source (roaming, §6.5 of the whitepaper, and cookie
// binding, §5.4.7, use the source address and port), and on a socket that
// survives anything a peer or the network does to it.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { BatchUdpSocket, formatEntryAddress, loadUdpNative, type RecvBatch } from '../../../../vpn/edge';
import { UdpEdge } from '../../../../vpn/edge';
import type { Endpoint } from '../../../../vpn/protocol';
import { Keypair } from '../../../../vpn/protocol/keypair';
import { numberTransport, openTransport, OutboundTransport } from '../../../../vpn/protocol/transport';

interface Got { data: Buffer; address: string; port: number }

const open: BatchUdpSocket[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A socket that copies what it receives (the batch memory is reused). */
async function receiver(address: string, got: Got[]): Promise<BatchUdpSocket> {
  const s = await BatchUdpSocket.open({
    port: 0,
    address,
    onBatch: (b: RecvBatch) => {
      for (let i = 0; i < b.count; i++) got.push({ data: Buffer.from(b.datagram(i)), address: b.addressOf(i), port: b.portOf(i) });
    },
  });
  open.push(s);
  return s;
}

async function until(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 50));

test('the addon is built and loads (npm install runs node-gyp for binding.gyp)', () => {
  expect(typeof loadUdpNative()).toBe('object');
});

test('IPv4: a datagram round-trips with its source address and port', async () => {
  const gotA: Got[] = [], gotB: Got[] = [];
  const a = await receiver('127.0.0.1', gotA);
  const b = await receiver('127.0.0.1', gotB);
  expect(a.family).toBe(4);
  expect(b.send(Buffer.from('ping'), '127.0.0.1', a.port)).toBe(true);
  await until('ping', () => gotA.length === 1);
  expect(gotA[0]).toEqual({ data: Buffer.from('ping'), address: '127.0.0.1', port: b.port });
  a.send(Buffer.from('pong'), gotA[0].address, gotA[0].port);
  await until('pong', () => gotB.length === 1);
  expect(gotB[0]).toEqual({ data: Buffer.from('pong'), address: '127.0.0.1', port: a.port });
});

test('dual-stack: one socket on :: serves IPv6 and IPv4 peers, IPv4 reported as dotted text', async () => {
  const got: Got[] = [], got6: Got[] = [], got4: Got[] = [];
  const server = await receiver('::', got);
  const c6 = await receiver('::1', got6);
  const c4 = await receiver('127.0.0.1', got4);
  expect(server.family).toBe(6);
  c6.send(Buffer.from('six'), '::1', server.port);
  c4.send(Buffer.from('four'), '127.0.0.1', server.port);
  await until('both', () => got.length === 2);
  const bySrc = new Map(got.map((g) => [g.data.toString(), g]));
  expect(bySrc.get('six')).toMatchObject({ address: '::1', port: c6.port });
  expect(bySrc.get('four')).toMatchObject({ address: '127.0.0.1', port: c4.port });
  // Replies go back through the same dual-stack socket to either family.
  server.send(Buffer.from('r6'), '::1', c6.port);
  server.send(Buffer.from('r4'), '127.0.0.1', c4.port);
  await until('replies', () => got6.length === 1 && got4.length === 1);
  expect(got6[0].data.toString()).toBe('r6');
  expect(got4[0].data.toString()).toBe('r4');
});

test('10,000 datagrams sent in batches all arrive once, intact and in order', async () => {
  const got: Got[] = [];
  const rx = await receiver('127.0.0.1', got);
  const tx = await receiver('127.0.0.1', []);
  const TOTAL = 10_000, ROUND = 500, SIZE = 1452;
  for (let sent = 0; sent < TOTAL; ) {
    for (let i = 0; i < ROUND; i++, sent++) {
      const d = Buffer.alloc(SIZE, sent & 0xff);
      d.writeUInt32BE(sent, 0);
      tx.send(d, '127.0.0.1', rx.port);
    }
    await until(`${sent} datagrams`, () => got.length >= sent);
  }
  expect(got.length).toBe(TOTAL);
  got.forEach((g, i) => {
    expect(g.data.length).toBe(SIZE);
    expect(g.data.readUInt32BE(0)).toBe(i);
    expect(g.data.subarray(4).every((x) => x === (i & 0xff))).toBe(true);
  });
  expect(rx.counters.rx_batches).toBeLessThan(TOTAL);
});

test('GSO runs: same-size datagrams to one peer with a shorter one and a size change keep order and lengths', async () => {
  const got: Got[] = [];
  const rx = await receiver('127.0.0.1', got);
  const tx = await receiver('127.0.0.1', []);
  const sizes = [1452, 1452, 1452, 1000, 1452, 1452, 200, 200, 1452, 3000, 3000];
  sizes.forEach((n, i) => tx.send(Buffer.alloc(n, i + 1), '127.0.0.1', rx.port));
  await until('all', () => got.length === sizes.length);
  expect(got.map((g) => g.data.length)).toEqual(sizes);
  got.forEach((g, i) => expect(g.data.every((x) => x === i + 1)).toBe(true));
  if (tx.gso) expect(tx.counters.tx_gso_messages).toBeGreaterThan(0);
});

test('queue buffers are reused: sizes around the pooled size (2048) over rounds of more datagrams than the pool keeps arrive intact', async () => {
  const got: Got[] = [];
  const rx = await receiver('127.0.0.1', got);
  const tx = await receiver('127.0.0.1', []);
  // Each round sends 300 datagrams (more than the 256 buffers kept), flushed 64 at a time,
  // so most are written into buffers that earlier ones gave back; every byte says which datagram it is.
  const sizes = [1, 2047, 2048, 2049, 1452, 4000, 60];
  const want: Buffer[] = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 300; i++) {
      const n = want.length;
      const d = Buffer.alloc(sizes[n % sizes.length], (n * 31) & 0xff);
      want.push(d);
      tx.send(d, '127.0.0.1', rx.port);
    }
    await until(`round ${round}`, () => got.length === want.length);
  }
  got.forEach((g, i) => expect(g.data.equals(want[i])).toBe(true));
});

test('a 0-byte datagram (a valid UDP datagram) and a 65,000-byte one both arrive', async () => {
  const got: Got[] = [];
  const rx = await receiver('127.0.0.1', got);
  const tx = await receiver('127.0.0.1', []);
  const big = Buffer.alloc(65_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  tx.send(Buffer.alloc(0), '127.0.0.1', rx.port);
  tx.send(big, '127.0.0.1', rx.port);
  await until('both', () => got.length === 2);
  expect(got[0].data.length).toBe(0);
  expect(got[1].data.equals(big)).toBe(true);
});

test('close() from inside the batch callback stops delivery without a crash', async () => {
  let calls = 0;
  let closing: Promise<void> | null = null;
  const s = await BatchUdpSocket.open({
    port: 0,
    address: '127.0.0.1',
    onBatch: () => {
      calls++;
      closing = s.close();
    },
  });
  const tx = await receiver('127.0.0.1', []);
  for (let i = 0; i < 200; i++) tx.send(Buffer.alloc(100), '127.0.0.1', s.port);
  await until('first batch', () => calls > 0);
  await closing;
  await tick();
  expect(calls).toBe(1);
  expect(s.send(Buffer.from('late'), '127.0.0.1', tx.port)).toBe(false);
});

test('sending to a port nobody listens on (ICMP port unreachable) neither throws nor breaks the socket', async () => {
  const got: Got[] = [];
  const s = await receiver('::', got);
  const closed = createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const deadPort = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  for (let i = 0; i < 20; i++) {
    expect(s.send(Buffer.from('x'), '127.0.0.1', deadPort)).toBe(true);
    expect(s.send(Buffer.from('x'), '::1', deadPort)).toBe(true);
  }
  await tick();
  const peer = await receiver('127.0.0.1', []);
  peer.send(Buffer.from('still alive'), '127.0.0.1', s.port);
  await until('datagram after the errors', () => got.length === 1);
  expect(got[0].data.toString()).toBe('still alive');
});

test('a destination that is not an address is dropped and counted, not thrown', async () => {
  const s = await receiver('127.0.0.1', []);
  expect(s.send(Buffer.from('x'), 'not-an-address', 9)).toBe(false);
  expect(s.send(Buffer.from('x'), '::1', 9)).toBe(true); // IPv6 from an IPv4 socket: fails in the kernel
  await tick();
  expect(s.counters.tx_errors).toBe(2);
});

test('an exception in onBatch is reported to onError and the socket keeps receiving', async () => {
  const errors: Error[] = [];
  let calls = 0;
  const s = await BatchUdpSocket.open({
    port: 0,
    address: '127.0.0.1',
    onBatch: () => {
      calls++;
      if (calls === 1) throw new Error('handler bug');
    },
    onError: (e) => errors.push(e),
  });
  open.push(s);
  const tx = await receiver('127.0.0.1', []);
  tx.send(Buffer.from('1'), '127.0.0.1', s.port);
  await until('first', () => calls === 1);
  tx.send(Buffer.from('2'), '127.0.0.1', s.port);
  await until('second', () => calls === 2);
  expect(errors.map((e) => e.message)).toEqual(['handler bug']);
  expect(s.counters.callback_errors).toBe(1);
});

test('IPv6 source text follows RFC 5952 (longest zero run compressed, lower case)', () => {
  const t = Buffer.alloc(18);
  Buffer.from('20010db8000000000001000000000001', 'hex').copy(t);
  expect(formatEntryAddress(t, 0)).toBe('2001:db8::1:0:0:1');
  Buffer.from('fe800000000000000000000000000abc', 'hex').copy(t);
  expect(formatEntryAddress(t, 0)).toBe('fe80::abc');
  Buffer.from('00000000000000000000ffff0a000001', 'hex').copy(t);
  expect(formatEntryAddress(t, 0)).toBe('10.0.0.1');
});

describe('transport messages sealed by the addon (sealSend)', () => {
  /** A keypair whose send key is the receive key of `peer`, as after a handshake. */
  function pair(): { ours: Keypair; theirs: Keypair } {
    const k1 = randomBytes(32), k2 = randomBytes(32);
    return { ours: new Keypair(k1, k2, true, 0, 1, 0x01020304), theirs: new Keypair(k2, k1, false, 0, 0x01020304, 1) };
  }

  test('byte for byte the message sodium-native seals, for every padding case and a counter past 2^32, and it opens', async () => {
    const got: Got[] = [];
    const rx = await receiver('127.0.0.1', got);
    const tx = await receiver('127.0.0.1', []);
    expect(tx.seals).toBe(true);
    const { ours, theirs } = pair();
    ours.setSendCounter((7n << 32n) | 0xfffffffen);
    const lengths = [0, 1, 15, 16, 17, 40, 1419, 1420, 1500, 9000];
    const want: Buffer[] = [];
    for (const len of lengths) {
      // Half of them after a flush, which clears the addon's cipher context of the last key.
      if (len === 40) await tick();
      const packet = randomBytes(len);
      const t = numberTransport(ours, packet, new OutboundTransport());
      want.push(t.seal());
      expect(tx.sealSend(t.packet, t.key, t.receiverIndex, t.counterLo, t.counterHi, '127.0.0.1', rx.port)).toBe(true);
    }
    await until('all sealed messages', () => got.length === lengths.length);
    got.forEach((g, i) => {
      expect(g.data.length).toBe(want[i].length);
      expect(g.data.equals(want[i])).toBe(true);
      expect(openTransport(theirs, g.data)?.subarray(0, lengths[i]).length).toBe(lengths[i]);
    });
    expect(got[2].data.readUInt32LE(8)).toBe(0); // the third message crossed into counter 2^32 * 8
    expect(got[2].data.readUInt32LE(12)).toBe(8);
  });

  test('two sessions interleaved in one batch: each message is sealed under its own key (the context reloads on a change)', async () => {
    const got: Got[] = [];
    const rx = await receiver('127.0.0.1', got);
    const tx = await receiver('127.0.0.1', []);
    const sessions = [pair(), pair()];
    // Runs of one key, then the other, then back: the cached key must follow every switch.
    const order = [0, 0, 1, 0, 1, 1, 0];
    const want: Buffer[] = [];
    for (const [i, s] of order.entries()) {
      const t = numberTransport(sessions[s].ours, randomBytes(100 + i), new OutboundTransport());
      want.push(t.seal());
      expect(tx.sealSend(t.packet, t.key, t.receiverIndex, t.counterLo, t.counterHi, '127.0.0.1', rx.port)).toBe(true);
    }
    await until('all sealed messages', () => got.length === order.length);
    got.forEach((g, i) => {
      expect(g.data.equals(want[i])).toBe(true);
      expect(openTransport(sessions[order[i]].theirs, g.data)?.subarray(0, 100 + i).length).toBe(100 + i);
      expect(openTransport(sessions[1 - order[i]].theirs, g.data)).toBeNull();
    });
  });

  test('a wrong key length is refused and nothing is sent; later sends to alternating destinations reach each one', async () => {
    const gotA: Got[] = [], gotB: Got[] = [];
    const a = await receiver('127.0.0.1', gotA);
    const b = await receiver('127.0.0.1', gotB);
    const tx = await receiver('127.0.0.1', []);
    const { ours, theirs } = pair();
    expect(tx.sealSend(Buffer.from('x'), Buffer.alloc(31), 1, 0, 0, '127.0.0.1', a.port)).toBe(false);
    expect(tx.sealSend(Buffer.from('x'), ours.sendKey, 1, 0, 0, 'not an address', a.port)).toBe(false);
    for (let i = 0; i < 6; i++) {
      const t = numberTransport(ours, Buffer.from(`m${i}`), new OutboundTransport());
      expect(tx.sealSend(t.packet, t.key, t.receiverIndex, t.counterLo, t.counterHi, '127.0.0.1', i % 2 === 0 ? a.port : b.port)).toBe(true);
    }
    await until('both halves', () => gotA.length === 3 && gotB.length === 3);
    const text = (g: Got[]) => g.map((x) => openTransport(theirs, x.data)?.subarray(0, 2).toString());
    expect(text(gotA)).toEqual(['m0', 'm2', 'm4']);
    expect(text(gotB)).toEqual(['m1', 'm3', 'm5']);
    expect(tx.counters.tx_errors).toBe(1); // the bad address; the bad key never reached the queue
  });
});

describe('UdpEdge', () => {
  async function edgeRoundTrip(batched: boolean): Promise<{ kind: string; got: Array<{ data: string; from: Endpoint }> }> {
    const got: Array<{ data: string; from: Endpoint }> = [];
    const edge = await UdpEdge.listen({ port: 0, batched, onDatagram: (d, from) => got.push({ data: d.toString(), from: { ...from } }), onError: () => undefined });
    try {
      const peer = createSocket('udp4');
      await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
      const replies: string[] = [];
      peer.on('message', (m) => replies.push(m.toString()));
      peer.send('hello', edge.port, '127.0.0.1');
      await until('hello', () => got.length === 1);
      edge.send(Buffer.from('back'), got[0].from);
      await until('reply', () => replies.length === 1);
      // A transport message is sealed on the way out, by the addon or (dgram) by sodium-native: the same bytes.
      const key = Buffer.alloc(32, 9);
      const t = numberTransport(new Keypair(key, key, true, 0, 1, 2), Buffer.from('sealed'), new OutboundTransport());
      const want = t.seal();
      const sealed: Buffer[] = [];
      peer.on('message', (m) => sealed.push(m));
      edge.sendDatagram(t, got[0].from);
      await until('sealed reply', () => sealed.length === 1);
      expect(sealed[0].equals(want)).toBe(true);
      expect(got[0].from).toEqual({ address: '127.0.0.1', port: peer.address().port });
      peer.close();
      return { kind: edge.kind, got };
    } finally {
      await edge.close();
    }
  }

  test('uses batched I/O when the addon loaded: same datagrams and endpoints as before', async () => {
    const r = await edgeRoundTrip(true);
    expect(r.kind).toBe('batched');
    expect(r.got[0].data).toBe('hello');
  });

  test('falls back to node:dgram when batched I/O is unavailable (simulated by batched: false)', async () => {
    const r = await edgeRoundTrip(false);
    expect(r.kind).toBe('dgram');
    expect(r.got[0].data).toBe('hello');
  });

  test('without the addon (SIGHTLINE_UDP_NATIVE=off) it says why, once, and still works', async () => {
    const reasons: string[] = [];
    process.env.SIGHTLINE_UDP_NATIVE = 'off';
    try {
      for (let i = 0; i < 2; i++) {
        const edge = await UdpEdge.listen({ port: 0, address: '127.0.0.1', onDatagram: () => undefined, onError: () => undefined, onFallback: (r) => reasons.push(r) });
        expect(edge.kind).toBe('dgram');
        await edge.close();
      }
    } finally {
      delete process.env.SIGHTLINE_UDP_NATIVE;
    }
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/SIGHTLINE_UDP_NATIVE=off/);
  });
});
