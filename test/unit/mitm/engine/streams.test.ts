// The engine's stream adapter carrying real TLS, over in-memory connections
// on a fake clock: an inspected flow is a pure byte relay between two
// node:tls sessions (large transfers byte-equal with backpressure, a
// half-close reaching the other side while the reverse keeps flowing,
// upgraded streams, HTTP/2), the client is offered what the origin chose,
// and the client stream is any Duplex (the TCP stack's is not a socket).

import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { RelayTap } from '../../../../netstack';
import { removeTempDirs } from '../ca_helpers';
import { turn } from '../memory_streams';
import { EngineOverMemory, get, handshake, originCert } from './adapter';
import { type Pki, makePki } from './machine';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const BODY = randomBytes(100_000);

const origin = (host: string, handler: http.RequestListener = (_q, s) => s.end(BODY)): https.Server =>
  https.createServer(originCert(pki, host), handler);

test('HTTP/1.1: a client trusting only the company CA gets the origin\'s body byte-equal, under a leaf the company CA issued for the origin\'s names', async () => {
  const eut = new EngineOverMemory(pki, origin('good.test'));
  const res = await get(eut, '/a', { servername: 'good.test', ca: pki.ca.certPem });
  expect(res.status).toBe(200);
  expect(res.body.equals(BODY)).toBe(true);
  const leaf = new X509Certificate(res.peer.raw);
  expect(leaf.checkIssued(pki.ca.x509)).toBe(true);
  expect(leaf.subjectAltName).toContain('DNS:good.test');
  const [end] = await eut.ended(1);
  expect(end).toMatchObject({ mode: 'inspect', result: 'closed', host: 'good.test', issuer: 'company' });
});

test('HTTP/2: the client negotiates h2 because the origin chose it, and the body is byte-equal', async () => {
  const server = http2.createSecureServer(originCert(pki, 'h2.test'), (_q, s) => s.end(BODY));
  const eut = new EngineOverMemory(pki, server);
  const session = http2.connect('https://h2.test', {
    createConnection: () => tls.connect({ socket: eut.connect(), servername: 'h2.test', ca: [pki.ca.certPem], ALPNProtocols: ['h2'] }),
  });
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.end();
  });
  expect(body.equals(BODY)).toBe(true);
  expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2');
  session.close();
  const [end] = await eut.ended(1);
  expect(end).toMatchObject({ mode: 'inspect', alpn: 'h2' });
});

test('an HTTP/1.1-only origin makes the engine refuse h2 to the client: ALPN follows what upstream chose', async () => {
  const eut = new EngineOverMemory(pki, origin('h1.test'));
  const r = await handshake(eut.connect(), { servername: 'h1.test', ca: [pki.ca.certPem], ALPNProtocols: ['h2', 'http/1.1'] });
  if (!r.ok) throw new Error(r.code);
  expect(r.socket.alpnProtocol).toBe('http/1.1');
  r.socket.destroy();
});

test('a 20 MB download arrives byte-equal through the decrypting relay', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const eut = new EngineOverMemory(pki, origin('big.test', (_q, s) => s.end(big)));
  const res = await get(eut, '/big', { servername: 'big.test', ca: pki.ca.certPem });
  expect(sha256(res.body)).toBe(sha256(big));
  const [end] = await eut.ended(1);
  expect(end.bytesFromServer as number).toBeGreaterThan(big.length);
});

test('a 20 MB upload arrives byte-equal at the origin (backpressure toward the client)', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const eut = new EngineOverMemory(pki, origin('up.test', (req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
  }));
  const res = await get(eut, '/', { servername: 'up.test', ca: pki.ca.certPem, method: 'POST', body: big });
  expect(res.body.toString()).toBe(`${big.length} ${sha256(big)}`);
});

test('half-close: the client ends its side and still receives the answer the origin sends after reading EOF', async () => {
  // RFC 9293 §3.6 half-close, carried over TLS as close_notify (RFC 8446 §6.1).
  const server = tls.createServer({ ...originCert(pki, 'half.test'), allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`read ${n} bytes then EOF`));
  });
  const eut = new EngineOverMemory(pki, server);
  const r = await handshake(eut.connect(), { servername: 'half.test', ca: [pki.ca.certPem], allowHalfOpen: true } as tls.ConnectionOptions);
  if (!r.ok) throw new Error(r.code);
  r.socket.end(Buffer.alloc(70_000, 1));
  const chunks: Buffer[] = [];
  for await (const c of r.socket) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).toString()).toBe('read 70000 bytes then EOF');
  const [end] = await eut.ended(1);
  expect(end.result).toBe('closed');
});

test('an upgraded (WebSocket-style) stream keeps echoing across several round trips', async () => {
  const server = origin('ws.test', (_q, s) => s.end());
  server.on('upgrade', (_req: http.IncomingMessage, socket: tls.TLSSocket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (c: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), c])));
  });
  const eut = new EngineOverMemory(pki, server);
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const req = https.request({
      headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket' },
      createConnection: () => tls.connect({ socket: eut.connect(), servername: 'ws.test', ca: [pki.ca.certPem] }),
    });
    req.on('upgrade', (_res, s: tls.TLSSocket) => resolve(s));
    req.on('error', reject);
    req.end();
  });
  for (let i = 0; i < 5; i++) {
    const reply = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
    socket.write(`message ${i}`);
    expect(await reply).toBe(`echo:message ${i}`);
    for (let t = 0; t < 10; t++) await turn();
  }
  socket.destroy();
  await eut.ended(1);
});

test('the HTTP log sees the decrypted request and response bytes', async () => {
  const seen = { up: [] as Buffer[], down: [] as Buffer[], ended: false };
  const eut = new EngineOverMemory(pki, origin('log.test'), {
    httpLogger: (): RelayTap => ({ clientToServer: (c) => seen.up.push(c), serverToClient: (c) => seen.down.push(c), end: () => (seen.ended = true) }),
  });
  await get(eut, '/logged?q=1', { servername: 'log.test', ca: pki.ca.certPem });
  await eut.ended(1);
  expect(Buffer.concat(seen.up).toString()).toMatch(/^GET \/logged\?q=1 HTTP\/1\.1\r\n/);
  expect(Buffer.concat(seen.down).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(seen.ended).toBe(true);
});

test('a throwing HTTP log is detached and counted; the transfer still completes', async () => {
  const eut = new EngineOverMemory(pki, origin('badlog.test'), {
    httpLogger: (): RelayTap => ({ clientToServer: () => { throw new Error('parser bug'); }, serverToClient: () => undefined, end: () => undefined }),
  });
  const res = await get(eut, '/', { servername: 'badlog.test', ca: pki.ca.certPem });
  expect(res.body.equals(BODY)).toBe(true);
  await eut.ended(1);
  expect(eut.engine.counters.http_logger_errors).toBe(1);
});
