// The DNS forwarder's sockets and limits against a real UDP "upstream" on
// loopback: a fixed set of source ports that rotates, the forwarder's own
// query IDs on the wire, forged answers dropped, caps answered with SERVFAIL.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { DnsForwarder, type DnsForwarderOptions } from '../../../../vpn/dns';
import { query } from './dns_helpers';

function answerTo(q: Buffer, marker: number): Buffer {
  const a = Buffer.concat([q, Buffer.from([marker])]);
  a.writeUInt16BE(0x8180, 2);
  return a;
}

interface Upstream {
  sock: Socket;
  port: number;
  seen: Array<{ msg: Buffer; from: RemoteInfo }>;
}

/** A UDP server on 127.0.0.1; `answer` decides what to do with each query. */
async function upstream(answer: (u: Upstream, msg: Buffer, from: RemoteInfo) => void): Promise<Upstream> {
  const sock = createSocket('udp4');
  const u: Upstream = { sock, port: 0, seen: [] };
  sock.on('message', (msg, from) => {
    u.seen.push({ msg, from });
    answer(u, msg, from);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  u.port = sock.address().port;
  return u;
}

const echo = (u: Upstream, msg: Buffer, from: RemoteInfo) => u.sock.send(answerTo(msg, 1), from.port, from.address);
const silent = () => undefined;

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function forwarder(u: Upstream, opts: Partial<DnsForwarderOptions> = {}): DnsForwarder {
  const f = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: u.port }], ...opts });
  open.push(f, u.sock);
  return f;
}

function ask(f: DnsForwarder, q: Buffer, user = 'alice'): Promise<Buffer> {
  return new Promise((resolve) => f.handle(q, 1232, resolve, user));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DNS forwarder sockets and IDs', () => {
  test('queries leave from a small fixed set of source ports, not one socket per query', async () => {
    const u = await upstream(echo);
    const f = forwarder(u);
    await Promise.all(Array.from({ length: 60 }, (_, i) => ask(f, query(i))));
    const ports = new Set(u.seen.map((s) => s.from.port));
    expect(ports.size).toBeLessThanOrEqual(4);
    expect(f.counters.socketsOpened).toBe(4);
    expect(f.counters.answers).toBe(60);
  });

  test('sockets are replaced as they are used, so source ports keep changing, and replaced ones are closed', async () => {
    const u = await upstream(echo);
    const f = forwarder(u, { sockets: { perFamily: 2, rotateAfterQueries: 5 } });
    for (let i = 0; i < 40; i++) await ask(f, query(i));
    expect(new Set(u.seen.map((s) => s.from.port)).size).toBeGreaterThanOrEqual(8);
    expect(f.counters.socketsRotated).toBeGreaterThanOrEqual(6);
  });

  test("the upstream sees the forwarder's random IDs; the client gets its own ID back", async () => {
    const u = await upstream(echo);
    const f = forwarder(u);
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(f, query(0x1234))));
    expect(answers.every((a) => a.readUInt16BE(0) === 0x1234)).toBe(true);
    const ids = new Set(u.seen.map((s) => s.msg.readUInt16BE(0)));
    expect(ids.size).toBeGreaterThanOrEqual(19);
  });

  test('a forged answer (right ID and question) from another port is dropped; the genuine one is delivered', async () => {
    const spoofer = createSocket('udp4');
    open.push(spoofer);
    await new Promise<void>((r) => spoofer.bind(0, '127.0.0.1', r));
    const u = await upstream((up, msg, from) => {
      // The attacker races the upstream with a perfect copy from another port.
      spoofer.send(answerTo(msg, 0x66), from.port, from.address);
      setTimeout(() => up.sock.send(answerTo(msg, 0x01), from.port, from.address), 100);
    });
    const f = forwarder(u);
    const a = await ask(f, query(7));
    expect(a[a.length - 1]).toBe(0x01);
    expect(f.counters.droppedWrongUpstream).toBe(1);
  });
});

describe('DNS forwarder opcodes', () => {
  test.each([
    ['UPDATE', 5],
    ['NOTIFY', 4],
    ['IQUERY', 1],
  ])('%s (opcode %i) is answered NOTIMP with its ID and never reaches the upstream; QUERY still does', async (_name, opcode) => {
    const u = await upstream(echo);
    const f = forwarder(u);
    const msg = query(0x7777, 'corp.example');
    msg.writeUInt16BE((opcode << 11) | 0x0100, 2);
    const a = await ask(f, msg);
    expect(a.length).toBe(12);
    expect(a.readUInt16BE(0)).toBe(0x7777);
    expect(a.readUInt16BE(2)).toBe(0x8000 | (opcode << 11) | 4);
    expect(f.counters.refusedOpcode).toBe(1);
    expect(await ask(f, query(0x7778))).toHaveLength(query(0x7778).length + 1);
    expect(u.seen).toHaveLength(1);
  });
});

describe('DNS forwarder limits', () => {
  test('beyond maxInFlightPerUser the client gets SERVFAIL at once; another user is still served', async () => {
    const u = await upstream(silent);
    const f = forwarder(u, { maxInFlightPerUser: 2, timeoutMs: 5000 });
    f.handle(query(1), 1232, () => undefined, 'alice');
    f.handle(query(2), 1232, () => undefined, 'alice');
    const refused = await ask(f, query(3), 'alice');
    expect(refused.readUInt16BE(2) & 0x000f).toBe(2);
    expect(f.counters.refusedUserLimit).toBe(1);
    f.handle(query(4), 1232, () => undefined, 'bob');
    expect(f.inFlight('bob')).toBe(1);
    expect(f.counters.refusedUserLimit).toBe(1);
  });

  test('beyond maxInFlight (all users) queries are refused with SERVFAIL', async () => {
    const u = await upstream(silent);
    const f = forwarder(u, { maxInFlight: 2, timeoutMs: 5000 });
    f.handle(query(1), 1232, () => undefined, 'a');
    f.handle(query(2), 1232, () => undefined, 'b');
    const refused = await ask(f, query(3), 'c');
    expect(refused.readUInt16BE(2) & 0x000f).toBe(2);
    expect(f.counters.refusedTotalLimit).toBe(1);
  });

  test('a query that times out frees its slot for the next one', async () => {
    const u = await upstream(silent);
    const f = forwarder(u, { maxInFlightPerUser: 1, timeoutMs: 200 });
    f.handle(query(1), 1232, () => undefined, 'alice');
    expect(f.inFlight('alice')).toBe(1);
    for (let i = 0; i < 100 && f.inFlight('alice') > 0; i++) await sleep(50);
    expect(f.inFlight('alice')).toBe(0);
    expect(f.counters.timeouts).toBe(1);
    f.handle(query(2), 1232, () => undefined, 'alice');
    expect(f.inFlight('alice')).toBe(1);
    expect(f.counters.refusedUserLimit).toBe(0);
  });

  test("queries are charged to the user's buffer budget while in flight, and refused with SERVFAIL when it is spent", async () => {
    const u = await upstream(echo);
    let held = 0;
    let allow = true;
    const f = forwarder(u, {
      budget: {
        reserve: (_user, bytes) => {
          if (!allow) return false;
          held += bytes;
          return true;
        },
        unreserve: (_user, bytes) => {
          held -= bytes;
        },
      },
    });
    await Promise.all([ask(f, query(1)), ask(f, query(2))]);
    expect(held).toBe(0);
    allow = false;
    const refused = await ask(f, query(3));
    expect(refused.readUInt16BE(2) & 0x000f).toBe(2);
    expect(f.counters.refusedBudget).toBe(1);
    expect(f.inFlight('alice')).toBe(0);
  });
});
