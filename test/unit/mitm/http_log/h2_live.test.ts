// Real HTTP/2 traffic: a node:http2 server (h2c, plaintext) on 127.0.0.1,
// node:http2 and curl --http2-prior-knowledge clients, and a tapping proxy
// between them feeding the logger exactly what crossed the wire. nghttp2
// (in node and curl) uses Huffman coding, the dynamic table, flow control
// and WINDOW_UPDATE, so this checks the parser against a real encoder.
import http2 from 'node:http2';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { H2Connection } from '../../../../mitm/http_log/h2';
import { Factory, replay } from './helpers';
import { startTap, Tap } from './tap';

const run = promisify(execFile);
const BIG = 1024 * 1024 + 17;

function startServer(): Promise<{ server: http2.Http2Server; port: number }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    stream.on('data', () => undefined);
    stream.on('end', () => {
      const reply = (status: number, body?: string | Buffer, extra: http2.OutgoingHttpHeaders = {}): void => {
        stream.respond({ ':status': status, ...extra }, { endStream: body === undefined });
        if (body !== undefined) stream.end(body);
      };
      if (path.startsWith('/hello')) reply(200, 'hello world', { 'content-type': 'text/plain' });
      else if (path === '/upload') reply(201, 'ok');
      else if (path === '/missing') reply(404, 'not found');
      else if (path === '/empty') reply(204);
      else if (path === '/head') reply(200, undefined, { 'content-length': '1234' });
      else if (path === '/big') reply(200, Buffer.alloc(BIG, 0x61));
      else if (path === '/fail') reply(500, 'boom');
      // '/hang' never answers: the client cancels it.
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port })));
}

interface Reply { status: number; bytes: number }

function request(client: http2.ClientHttp2Session, method: string, path: string, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':method': method, ':path': path, 'user-agent': 'sightline-test/1.0' }, { endStream: body === undefined });
    let status = 0;
    let bytes = 0;
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (d: Buffer) => { bytes += d.length; });
    req.on('end', () => resolve({ status, bytes }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

describe('HTTP/2 records from real node:http2 and curl traffic', () => {
  let origin: { server: http2.Http2Server; port: number };
  let tap: Tap;

  beforeAll(async () => {
    origin = await startServer();
  });
  afterAll(async () => {
    await new Promise<void>((r) => origin.server.close(() => r()));
  });
  beforeEach(async () => {
    tap = await startTap(origin.port, null);
  });
  afterEach(async () => {
    await tap.close();
  });

  test('concurrent node:http2 requests give one record each with method, status and byte counts', async () => {
    const client = http2.connect(`http://127.0.0.1:${tap.port}`);
    const replies = await Promise.all([
      request(client, 'GET', '/hello?token=abc123&lang=en'),
      request(client, 'POST', '/upload', Buffer.alloc(100_000, 1)),
      request(client, 'GET', '/missing'),
      request(client, 'DELETE', '/empty'),
      request(client, 'HEAD', '/head'),
      request(client, 'GET', '/big'),
      request(client, 'PUT', '/fail', Buffer.from('x=1')),
    ]);
    const hang = client.request({ ':path': '/hang', 'user-agent': 'sightline-test/1.0' });
    hang.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    hang.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    await tap.idle();

    expect(replies.map((r) => r.status)).toEqual([200, 201, 404, 204, 200, 200, 500]);
    const byPath = new Map(tap.records.map((r) => [r.path, r]));
    const authority = `127.0.0.1:${tap.port}`;
    const common = { type: 'http', protocol: 'h2', host: authority, userAgent: 'sightline-test/1.0' };
    expect(byPath.get('/hello?token=[redacted]&lang=[redacted]')).toMatchObject({ ...common, method: 'GET', status: 200, bytesUp: 0, bytesDown: 11 });
    expect(byPath.get('/upload')).toMatchObject({ ...common, method: 'POST', status: 201, bytesUp: 100_000, bytesDown: 2 });
    expect(byPath.get('/missing')).toMatchObject({ ...common, method: 'GET', status: 404, bytesDown: 9 });
    expect(byPath.get('/empty')).toMatchObject({ ...common, method: 'DELETE', status: 204, bytesDown: 0 });
    expect(byPath.get('/head')).toMatchObject({ ...common, method: 'HEAD', status: 200, bytesDown: 0 });
    expect(byPath.get('/big')).toMatchObject({ ...common, method: 'GET', status: 200, bytesDown: BIG });
    expect(byPath.get('/fail')).toMatchObject({ ...common, method: 'PUT', status: 500, bytesUp: 3, bytesDown: 4 });
    expect(byPath.get('/hang')).toMatchObject({ ...common, status: null, error: 'stream reset by client: CANCEL' });
    expect(tap.records).toHaveLength(8);
    expect(tap.records.filter((r) => r.path !== '/hang').every((r) => r.error === undefined)).toBe(true);
    expect(new Set(tap.records.map((r) => r.streamId)).size).toBe(8);
  });

  test('a recorded real connection replayed in 1-byte chunks gives the same records', async () => {
    const client = http2.connect(`http://127.0.0.1:${tap.port}`);
    await Promise.all([request(client, 'GET', '/hello?a=1'), request(client, 'POST', '/upload', Buffer.alloc(5000)), request(client, 'GET', '/missing')]);
    client.close();
    await tap.idle();
    const make: Factory = (emit) => new H2Connection({ sniHost: 'sni.test', now: () => 0, emit, maxHeaderBytes: 65536 });
    const whole = replay(make, tap.captures[0]);
    const bytewise = replay(make, tap.captures[0].flatMap((e) => [...e.data].map((b) => ({ dir: e.dir, data: Buffer.from([b]) }))));
    expect(whole).toHaveLength(3);
    expect(bytewise).toEqual(whole);
  });

  test('curl --http2-prior-knowledge requests are logged over h2 with curl\'s user agent', async () => {
    const base = `http://127.0.0.1:${tap.port}`;
    // Two invocations: curl 7.88 fails reusing a connection for a body after --next.
    const w = ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}'];
    const a = await run('curl', [...w, `${base}/hello?q=secret`]);
    const b = await run('curl', [...w, '-d', 'a=b', `${base}/upload`]);
    const stdout = `${a.stdout}\n${b.stdout}`;
    await tap.idle();
    expect(stdout.trim().split('\n')).toEqual(['2 200', '2 201']);
    expect(tap.records).toEqual([
      expect.objectContaining({ protocol: 'h2', method: 'GET', path: '/hello?q=[redacted]', status: 200, bytesDown: 11, userAgent: expect.stringMatching(/^curl\//) }),
      expect.objectContaining({ protocol: 'h2', method: 'POST', path: '/upload', status: 201, bytesUp: 3, bytesDown: 2 }),
    ]);
  });
});
