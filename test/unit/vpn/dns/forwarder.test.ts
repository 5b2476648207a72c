import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { DnsForwarder, maxUdpAnswerSize, systemResolvers } from '../../../../vpn/dns';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A query for "a.test" A, with or without an EDNS(0) OPT record.
function query(id: number, ednsSize: number | null): Buffer {
  const name = Buffer.from([1, 0x61, 4, 0x74, 0x65, 0x73, 0x74, 0]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ednsSize === null ? 0 : 1, 10);
  const q = Buffer.concat([header, name, Buffer.from([0, 1, 0, 1])]);
  if (ednsSize === null) return q;
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1);
  opt.writeUInt16BE(ednsSize, 3);
  return Buffer.concat([q, opt]);
}

function answerFor(q: Buffer, size: number, truncated: boolean): Buffer {
  const a = Buffer.alloc(Math.max(size, q.length));
  q.copy(a);
  a.writeUInt16BE(0x8180 | (truncated ? 0x0200 : 0), 2);
  return a;
}

describe('DNS forwarder', () => {
  let udp: Socket;
  let tcp: Server;
  let port = 0;
  let bigAnswer = 900;

  beforeAll(async () => {
    tcp = createServer((sock) => {
      sock.once('data', (d: Buffer) => {
        const q = d.subarray(2, 2 + d.readUInt16BE(0));
        const a = answerFor(q, bigAnswer, false);
        const framed = Buffer.alloc(2 + a.length);
        framed.writeUInt16BE(a.length, 0);
        a.copy(framed, 2);
        sock.end(framed);
      });
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    port = (tcp.address() as { port: number }).port;
    udp = createSocket('udp4');
    // The UDP side truncates anything over 512 bytes, as a resolver does without EDNS.
    udp.on('message', (m, r) => udp.send(answerFor(m, bigAnswer > 512 ? 100 : bigAnswer, bigAnswer > 512), r.port, r.address));
    await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
  });

  afterAll(() => {
    udp.close();
    tcp.close();
  });

  function ask(fwd: DnsForwarder, q: Buffer, max: number): Promise<Buffer> {
    return new Promise((resolve) => fwd.handle(q, max, resolve));
  }

  test('a short answer comes back over UDP unchanged', async () => {
    bigAnswer = 200;
    const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port }] });
    const a = await ask(fwd, query(0x1234, null), 512);
    expect(a.readUInt16BE(0)).toBe(0x1234);
    expect(a.length).toBe(200);
    expect(fwd.counters.tcpRetries).toBe(0);
  });

  test('a truncated UDP answer is re-asked over TCP (RFC 7766) and delivered whole when it fits', async () => {
    bigAnswer = 900;
    const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port }] });
    const a = await ask(fwd, query(0x4321, 1232), 1232);
    expect(a.length).toBe(900);
    expect(a.readUInt16BE(2) & 0x0200).toBe(0);
    expect(fwd.counters.tcpRetries).toBe(1);
  });

  test('an answer too large for the client comes back truncated with TC set, so the client retries over TCP', async () => {
    bigAnswer = 900;
    const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port }] });
    const a = await ask(fwd, query(0x1111, null), 512);
    expect(a.readUInt16BE(2) & 0x0200).toBe(0x0200);
    expect(a.length).toBeLessThanOrEqual(512);
    expect(fwd.counters.truncatedToClient).toBe(1);
  });

  test('beyond the query rate (dns.maxQueriesPerSecondPerUser after dns.queryBurstPerUser) a query is answered REFUSED at once, unforwarded and unrecorded; the next recorded query says how many', async () => {
    bigAnswer = 200;
    const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port }], maxQueriesPerSecondPerUser: 5, queryBurstPerUser: 10 });
    const outcomes: Array<{ rateLimited?: number }> = [];
    const asked = (user: string, id: number) => new Promise<Buffer>((resolve) => fwd.handle(query(id, null), 512, resolve, user, (o) => outcomes.push(o)));
    // The burst goes through; the next three are refused at once.
    const answers = await Promise.all(Array.from({ length: 13 }, (_, i) => asked('alice', 0x100 + i)));
    const refused = answers.filter((a) => (a.readUInt16BE(2) & 0x0f) === 5);
    expect(refused.map((a) => a.readUInt16BE(0))).toEqual([0x10a, 0x10b, 0x10c]);
    expect(refused[0].subarray(12).equals(query(0, null).subarray(12))).toBe(true); // the question is kept
    expect(fwd.counters.refusedRateLimit).toBe(3);
    expect(fwd.counters.queries).toBe(10);
    expect(outcomes).toHaveLength(10);
    // Another user has a bucket of its own.
    expect((await asked('bob', 0x200)).readUInt16BE(2) & 0x0f).toBe(0);
    await new Promise((r) => setTimeout(r, 250));
    expect((await asked('alice', 0x300)).readUInt16BE(2) & 0x0f).toBe(0);
    expect(outcomes.at(-1)).toMatchObject({ rateLimited: 3 });
    expect(outcomes.slice(0, -1).every((o) => o.rateLimited === undefined)).toBe(true);
    fwd.close();
  });

  test('responses (QR set) and runts are not forwarded', () => {
    const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port }] });
    fwd.handle(Buffer.alloc(5), 512, () => undefined);
    fwd.handle(answerFor(query(1, null), 40, false), 512, () => undefined);
    expect(fwd.counters.malformed).toBe(2);
  });

  test('the client may receive up to its EDNS(0) size, capped by the tunnel', () => {
    expect(maxUdpAnswerSize(query(1, null), 1372)).toBe(512);
    expect(maxUdpAnswerSize(query(1, 1232), 1372)).toBe(1232);
    expect(maxUdpAnswerSize(query(1, 4096), 1372)).toBe(1372);
  });

  test('default upstreams come from resolv.conf nameserver lines', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'dns-')), 'resolv.conf');
    writeFileSync(f, '# comment\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nsearch corp\nnameserver bogus\n');
    expect(systemResolvers(f)).toEqual([{ host: '10.0.0.53', port: 53 }, { host: 'fe80::1', port: 53 }]);
  });
});
