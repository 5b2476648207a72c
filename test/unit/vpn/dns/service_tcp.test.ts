// DNS over TCP to a tunnel address (RFC 7766): each length-prefixed query
// goes through the forwarder like a UDP one (its per-user limits, a `dns`
// record per query) and its answer comes back whole, in any order; bytes are
// framed however they arrive.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { DnsForwarder, type DnsOutcome } from '../../../../vpn/dns';
import { serveDnsOverTcp } from '../../../../vpn/dns/service';
import { query } from './dns_helpers';

function framed(...messages: Buffer[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => [Buffer.from([m.length >> 8, m.length & 0xff]), m]));
}

/** Answers read off the connection until `n` arrived. */
function answers(sock: Socket, n: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: Buffer[] = [];
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= n) resolve(out);
    });
    sock.on('error', reject);
  });
}

describe('DNS over TCP through the forwarder', () => {
  let upstream: UdpSocket;
  let server: Server;
  let fwd: DnsForwarder;
  const records: Array<{ user: string; name: string; outcome?: DnsOutcome }> = [];

  beforeAll(async () => {
    upstream = createSocket('udp4');
    // Echoes each query as a response; names with "slow" are answered 200 ms late.
    upstream.on('message', (m, r) => {
      const a = Buffer.from(m);
      a.writeUInt16BE(0x8180, 2);
      // Names go out in mixed case (0x20 randomisation): compared without it.
      const delay = m.toString('latin1').toLowerCase().includes('slow') ? 200 : 0;
      setTimeout(() => upstream.send(a, r.port, r.address), delay);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
    fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: upstream.address().port }], maxInFlightPerUser: 3 });
    server = createServer((sock) =>
      serveDnsOverTcp(sock, fwd, { id: 'key-a', user: 'alice' }, (owner, q) => {
        const rec: { user: string; name: string; outcome?: DnsOutcome } = { user: owner.user, name: q.subarray(13, 13 + q[12]).toString() };
        records.push(rec);
        return (outcome) => {
          rec.outcome = outcome;
        };
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  afterAll(() => {
    fwd.close();
    upstream.close();
    server.close();
  });

  test('queries arriving a byte at a time, pipelined, are answered whole and in the order the upstream answers; each is recorded', async () => {
    records.length = 0;
    const sock = connect((server.address() as { port: number }).port, '127.0.0.1');
    const got = answers(sock, 2);
    for (const b of framed(query(0x1111, 'slow.test'), query(0x2222, 'fast.test'))) sock.write(Buffer.from([b]));
    const [first, second] = await got;
    sock.destroy();
    expect([first.readUInt16BE(0), second.readUInt16BE(0)]).toEqual([0x2222, 0x1111]);
    expect(second.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(records.map((r) => [r.user, r.name])).toEqual([['alice', 'slow'], ['alice', 'fast']]);
    expect(records.every((r) => r.outcome?.upstream !== null)).toBe(true);
  });

  test("the user's in-flight limit applies: past it a query gets SERVFAIL at once, and the others are answered", async () => {
    const sock = connect((server.address() as { port: number }).port, '127.0.0.1');
    const got = answers(sock, 4);
    sock.write(framed(...[1, 2, 3, 4].map((i) => query(0x3000 + i, 'slow.test'))));
    const all = await got;
    sock.destroy();
    // The fourth was over the limit of 3: SERVFAIL (rcode 2), before the others came back.
    const [first, ...rest] = all.map((a) => [a.readUInt16BE(0), a.readUInt16BE(2) & 0x000f]);
    expect(first).toEqual([0x3004, 2]);
    expect(rest.sort((x, y) => x[0] - y[0])).toEqual([[0x3001, 0], [0x3002, 0], [0x3003, 0]]);
  });
});
