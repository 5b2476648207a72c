// 10,000 seeded random mutations of recorded HTTP/1.1 and HTTP/2 streams
// (real node:http2 traffic and hand-made exchanges). The parsers run without
// the logger's safety net, so any exception fails the test: parsing problems
// must end as error records, never as throws into the relay.
import http2 from 'node:http2';
import net from 'node:net';
import { H1Connection } from '../../../../mitm/http_log/h1';
import { H2Connection } from '../../../../mitm/http_log/h2';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';
import { frame, hpackBlock, PREFACE, settings } from './h2_build';
import { seededRandom } from '../../../../scripts/lab/prng';
import { c2s, Event, s2c } from './helpers';
import { startTap } from './tap';

const ITERATIONS = 10_000;

const H1_SAMPLES: Event[][] = [
  [c2s('GET /a?t=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello'),
    s2c('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n')],
  [c2s('POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n'),
    s2c('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n')],
  [c2s('GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), s2c('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00'),
    c2s('CONNECT a:1 HTTP/1.1\r\n\r\n')],
  [c2s('GET / HTTP/1.0\r\n\r\n'), s2c('HTTP/1.0 200 OK\r\n\r\nclose-delimited body')],
];

function h2Sample(): Event[] {
  const req = hpackBlock([[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.example'], [':path', '/x?y=1'], ['user-agent', 'u']]);
  return [
    c2s(Buffer.concat([PREFACE, settings([[1, 8192]]), frame(1, 0x4, 1, req.subarray(0, 10)), frame(9, 0x4, 1, req.subarray(10))])),
    s2c(Buffer.concat([settings(), frame(4, 1, 0), frame(1, 0x4 | 0x8, 1, Buffer.concat([Buffer.from([2]), hpackBlock([[':status', '200']]), Buffer.alloc(2)]))])),
    s2c(Buffer.concat([frame(5, 0x4, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), req])), frame(0, 0x8, 1, Buffer.from([1, 7, 7, 0])), frame(0, 1, 1, Buffer.alloc(3))])),
    c2s(Buffer.concat([frame(3, 0, 3, Buffer.from([0, 0, 0, 8])), frame(7, 0, 0, Buffer.alloc(8)), frame(8, 0, 0, Buffer.from([0, 0, 1, 0]))])),
  ];
}

async function captureRealH2(): Promise<Event[]> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': headers[':path'] === '/nf' ? 404 : 200, 'set-cookie': 'a=b' });
      stream.end('body bytes');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const tap = await startTap((server.address() as net.AddressInfo).port, 'h2');
  const client = http2.connect(`http://127.0.0.1:${tap.port}`);
  const get = (path: string, body?: string): Promise<void> => new Promise((resolve, reject) => {
    const req = client.request({ ':method': body ? 'POST' : 'GET', ':path': path, 'user-agent': 'fuzz/1', cookie: 'c=d' }, { endStream: !body });
    req.on('data', () => undefined);
    req.on('end', resolve);
    req.on('error', reject);
    if (body) req.end(body);
  });
  await Promise.all([get('/a?x=1'), get('/nf'), get('/p', 'form=1')]);
  client.close();
  await tap.idle();
  await tap.close();
  await new Promise<void>((r) => server.close(() => r()));
  return tap.captures[0];
}

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x0d, 0x0a, 0x3a, 0x20, 0x30, 0x3b, 0x01, 0x04, 0x09];

function mutate(events: Event[], rnd: () => number): Event[] {
  const bytes = events.map((e) => Buffer.from(e.data));
  const pick = (n: number): number => Math.floor(rnd() * n);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const i = pick(bytes.length);
    const b = bytes[i];
    if (b.length === 0) continue;
    const at = pick(b.length);
    switch (pick(6)) {
      case 0: b[at] ^= 1 << pick(8); break;
      case 1: b[at] = INTERESTING[pick(INTERESTING.length)]; break;
      case 2: bytes[i] = Buffer.concat([b.subarray(0, at), Buffer.from([pick(256), pick(256)]), b.subarray(at)]); break;
      case 3: bytes[i] = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + pick(16)))]); break;
      case 4: bytes[i] = Buffer.concat([b.subarray(0, at), b.subarray(at, at + pick(32)), b.subarray(at)]); break;
      default: bytes[i] = b.subarray(0, at); break;
    }
  }
  // Re-cut every event into random chunk sizes, as TCP would.
  const out: Event[] = [];
  events.forEach((e, i) => {
    let off = 0;
    while (off < bytes[i].length) {
      const n = 1 + pick(64);
      out.push({ dir: e.dir, data: bytes[i].subarray(off, off + n) });
      off += n;
    }
  });
  return out;
}

function wellFormed(r: HttpRequestRecord): boolean {
  return r.type === 'http' && r.bytesUp >= 0 && r.bytesDown >= 0 && r.durationMs >= 0 &&
    (r.status === null || (Number.isInteger(r.status) && r.status >= 100 && r.status <= 999));
}

test(`${ITERATIONS} random mutations of recorded streams never throw and yield well-formed records`, async () => {
  const h2Samples = [h2Sample(), await captureRealH2()];
  const rnd = seededRandom(0x5eed);
  let records = 0;
  const malformed: HttpRequestRecord[] = [];
  for (let it = 0; it < ITERATIONS; it++) {
    const useH2 = it % 2 === 1;
    const samples = useH2 ? h2Samples : H1_SAMPLES;
    const events = mutate(samples[it % samples.length], rnd);
    const out: HttpRequestRecord[] = [];
    const ctx = { sniHost: 'sni', now: () => it, emit: (r: HttpRequestRecord) => out.push(r), maxHeaderBytes: 2048 };
    const p = useH2 ? new H2Connection(ctx) : new H1Connection(ctx);
    try {
      for (const e of events) {
        if (e.dir === 'c2s') p.clientToServer(e.data);
        else p.serverToClient(e.data);
      }
      p.end();
    } catch (err) {
      throw new Error(`iteration ${it} threw: ${String(err)}`);
    }
    for (const r of out) if (!wellFormed(r)) malformed.push(r);
    JSON.stringify(out);
    records += out.length;
  }
  expect(malformed).toEqual([]);
  expect(records).toBeGreaterThan(ITERATIONS / 2);
});
