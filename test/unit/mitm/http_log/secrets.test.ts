// Secrets never reach a record (issue 5): Authorization (Basic and Bearer),
// Proxy-Authorization, Cookie and Set-Cookie values, form bodies and query
// values, over real HTTP/1.1 (curl, node:http) and HTTP/2 (curl, node:http2)
// traffic through the tapping proxy, and in malformed messages whose error
// records must not quote the bytes they failed on.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHttpLogger } from '../../../../mitm/http_log/logger';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';
import { frame, hpackBlock, PREFACE, settings } from './h2_build';
import { c2s, replay, s2c } from './helpers';
import { startTap } from './tap';

const run = promisify(execFile);

const BASIC = Buffer.from('alice:hunter2').toString('base64');
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.SECRET-BEARER-TOKEN';
const COOKIE = 'session=COOKIE-SECRET-42';
const SET_COOKIE = 'sid=SET-COOKIE-SECRET-99; HttpOnly';
const PROXY_AUTH = Buffer.from('proxyuser:PROXY-SECRET').toString('base64');
const FORM = 'user=alice&password=hunter2';
const SECRETS = ['hunter2', BASIC, 'SECRET-BEARER-TOKEN', 'COOKIE-SECRET-42', 'SET-COOKIE-SECRET-99', PROXY_AUTH, 'PROXY-SECRET', 'Bearer', 'Basic'];

function expectNoSecrets(records: HttpRequestRecord[]): void {
  const text = JSON.stringify(records);
  for (const s of SECRETS) expect(text).not.toContain(s);
}

/** Both exchanges (curl's login form, then the client's API call) are recorded with their query values redacted. */
function expectRedactedExchange(records: HttpRequestRecord[], protocol: string): void {
  expect(records).toEqual([
    expect.objectContaining({ protocol, method: 'POST', path: '/login?password=[redacted]&next=[redacted]', status: 302, bytesUp: FORM.length }),
    expect.objectContaining({ protocol, method: 'POST', path: '/api?token=[redacted]', status: 200, bytesUp: FORM.length }),
  ]);
  expectNoSecrets(records);
}

type Handler = (method: string, path: string, respond: (status: number, body: string) => void) => void;
const handler: Handler = (_method, path, respond) => respond(path.startsWith('/login') ? 302 : 200, 'ok');

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

const curlSecrets = (url: string, extra: string[]): string[] => [
  '-s', '-o', '/dev/null', ...extra,
  '-H', `Authorization: Basic ${BASIC}`, '-H', `Proxy-Authorization: Basic ${PROXY_AUTH}`, '-H', `Cookie: ${COOKIE}`,
  '-d', FORM, `${url}/login?password=hunter2&next=/home`,
];

describe('no secret reaches a record', () => {
  test('HTTP/1.1: curl and node:http with Authorization, Cookie, Set-Cookie and a password form', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => handler(req.method ?? '', req.url ?? '', (status, body) => {
        res.writeHead(status, { 'Set-Cookie': SET_COOKIE, 'Content-Type': 'text/plain' });
        res.end(body);
      }));
    });
    const port = await listen(server);
    const tap = await startTap(port, 'http/1.1');
    try {
      await run('curl', curlSecrets(`http://127.0.0.1:${tap.port}`, ['--http1.1']));
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: tap.port, method: 'POST', path: '/api?token=hunter2', agent: false,
          headers: { Authorization: `Bearer ${BEARER}`, Cookie: COOKIE, 'Content-Type': 'application/x-www-form-urlencoded' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(FORM);
      });
      await tap.idle();
      expectRedactedExchange(tap.records, 'http/1.1');
    } finally {
      await tap.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('HTTP/2: curl and node:http2 with Authorization, Cookie, Set-Cookie and a password form', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('data', () => undefined);
      stream.on('end', () => handler(String(headers[':method']), String(headers[':path']), (status, body) => {
        stream.respond({ ':status': status, 'set-cookie': SET_COOKIE });
        stream.end(body);
      }));
    });
    const port = await listen(server);
    const tap = await startTap(port, 'h2');
    try {
      await run('curl', curlSecrets(`http://127.0.0.1:${tap.port}`, ['--http2-prior-knowledge']));
      const client = http2.connect(`http://127.0.0.1:${tap.port}`);
      await new Promise<void>((resolve, reject) => {
        const req = client.request({ ':method': 'POST', ':path': '/api?token=hunter2', authorization: `Bearer ${BEARER}`, cookie: COOKIE });
        req.on('data', () => undefined);
        req.on('end', resolve);
        req.on('error', reject);
        req.end(FORM);
      });
      client.close();
      await tap.idle();
      expectRedactedExchange(tap.records, 'h2');
    } finally {
      await tap.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('malformed messages carrying secrets give error records that do not quote them', () => {
    const recs: HttpRequestRecord[] = [];
    const make = (alpn: string | null) => (emit: (r: HttpRequestRecord) => void) =>
      createHttpLogger({ alpn, sniHost: 'sni.example', now: () => 0, emit: (r) => { recs.push(r); emit(r); }, maxHeaderBytes: 1024 });
    // Request line broken by a header that holds a secret.
    replay(make(null), [c2s(`Authorization: Bearer ${BEARER}\r\nCookie: ${COOKIE}\r\n\r\n`)]);
    // Head over the bound, full of secrets.
    replay(make('http/1.1'), [c2s(`POST /login?password=hunter2 HTTP/1.1\r\nAuthorization: Basic ${BASIC}\r\nCookie: ${COOKIE}\r\nX: ${'p'.repeat(2000)}\r\n\r\n${FORM}`)]);
    // Chunked body that breaks inside the password.
    replay(make('http/1.1'), [c2s(`POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n${FORM}XX\r\n`)]);
    // Response head over the bound with a Set-Cookie.
    replay(make('http/1.1'), [c2s('GET / HTTP/1.1\r\n\r\n'), s2c(`HTTP/1.1 200 OK\r\nSet-Cookie: ${SET_COOKIE}\r\nX: ${'q'.repeat(2000)}`)]);
    // HTTP/2: a header block with secrets followed by a HPACK error.
    const block = Buffer.concat([hpackBlock([[':method', 'POST'], [':path', '/login?password=hunter2'], ['authorization', `Bearer ${BEARER}`], ['cookie', COOKIE]]), Buffer.from([0xff, 0x7f])]);
    replay(make('h2'), [c2s(Buffer.concat([PREFACE, settings(), frame(1, 0x5, 1, block)]))]);
    expect(recs.length).toBeGreaterThanOrEqual(4);
    expect(recs.every((r) => typeof r.error === 'string')).toBe(true);
    expectNoSecrets(recs);
  });
});
