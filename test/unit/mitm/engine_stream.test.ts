// The relay under inspection is a pure byte relay: large transfers arrive
// byte-equal with backpressure, a half-close reaches the other side while
// the reverse direction keeps flowing, upgraded (WebSocket-style) streams
// keep working, and broken TLS is closed with its reason recorded (traffic
// that is not TLS at all: engine_non_tls.test.ts).

import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import * as tls from 'node:tls';
import { InspectionEngine } from '../../../mitm/engine';
import { removeTempDirs } from './ca_helpers';
import { MemoryRecords, Pki, get, handshake, makePki, originCert, sha256, sleep, withEngine } from './engine_harness';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);


test('a 20 MB download arrives byte-equal through the decrypting relay', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const origin = https.createServer(originCert(pki, 'big.test'), (_req, res) => res.end(big));
  await withEngine(pki, origin, async (eut) => {
    const res = await get(eut.port, '/big', { servername: 'big.test', ca: pki.ca.certPem });
    expect(res.body.length).toBe(big.length);
    expect(sha256(res.body)).toBe(sha256(big));
    const [end] = await eut.ended(1);
    expect(end.bytesFromServer as number).toBeGreaterThan(big.length);
  });
});

test('a 20 MB upload arrives byte-equal at the origin (backpressure toward the client)', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const origin = https.createServer(originCert(pki, 'up.test'), (req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => { h.update(c); n += c.length; });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
  });
  await withEngine(pki, origin, async (eut) => {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: eut.port, method: 'POST', path: '/', servername: 'up.test', ca: [pki.ca.certPem], agent: false, headers: { host: 'up.test' } }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end(big);
    });
    expect(answer).toBe(`${big.length} ${sha256(big)}`);
  });
});

test('half-close: the client ends its side and still receives the answer the origin sends after reading EOF', async () => {
  // RFC 9293 §3.6 half-close, carried over TLS as close_notify (RFC 8446 §6.1).
  const { key, cert } = originCert(pki, 'half.test');
  const origin = tls.createServer({ key, cert, allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`read ${n} bytes then EOF`));
  });
  await withEngine(pki, origin, async (eut) => {
    const r = await handshake(eut.port, { servername: 'half.test', ca: [pki.ca.certPem], allowHalfOpen: true } as tls.ConnectionOptions);
    if (!r.ok) throw new Error(r.code);
    r.socket.end(Buffer.alloc(5000, 1));
    const chunks: Buffer[] = [];
    for await (const c of r.socket) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('read 5000 bytes then EOF');
    const [end] = await eut.ended(1);
    expect(end.result).toBe('closed');
  });
});

test('an upgraded (WebSocket-style) stream keeps echoing across several round trips', async () => {
  const origin = https.createServer(originCert(pki, 'ws.test'), (_q, s) => s.end());
  origin.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (c: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), c])));
  });
  await withEngine(pki, origin, async (eut) => {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: eut.port, servername: 'ws.test', ca: [pki.ca.certPem], agent: false,
        headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket' },
      });
      req.on('upgrade', (_res, s: net.Socket) => resolve(s));
      req.on('error', reject);
      req.end();
    });
    for (let i = 0; i < 5; i++) {
      const reply = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
      socket.write(`message ${i}`);
      expect(await reply).toBe(`echo:message ${i}`);
      await sleep(50);
    }
    socket.destroy();
    await eut.ended(1);
  });
});

test('a malformed ClientHello closes both sides and records the parser reason', async () => {
  const origin = net.createServer((s) => s.resume());
  await withEngine(pki, origin, async (eut) => {
    // A handshake record whose ClientHello declares cipher_suites of odd length.
    const body = Buffer.concat([Buffer.from([0x03, 0x03]), Buffer.alloc(32), Buffer.from([0, 0x00, 0x03, 0x13, 0x01, 0x13, 0x01, 0x00])]);
    const hs = Buffer.concat([Buffer.from([1, 0, 0, body.length]), body]);
    const rec = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0, hs.length]), hs]);
    await rawExchange(eut.port, rec);
    const [end] = await eut.ended(1);
    expect(end).toMatchObject({ result: 'client_hello_failed', reason: 'bad_cipher_suites_length' });
  });
});

test('a client that sends nothing is closed after the ClientHello deadline', async () => {
  const origin = net.createServer((s) => s.resume());
  await withEngine(pki, origin, async (eut) => {
    const c = net.connect({ host: '127.0.0.1', port: eut.port });
    c.on('error', () => undefined);
    const [end] = await eut.ended(1);
    expect(end).toMatchObject({ result: 'client_hello_failed', reason: 'client_hello_timeout' });
    c.destroy();
  }, { timeouts: { clientHelloMs: 200 } });
});

/** Writes bytes, then resolves once the engine closes the connection. */
function rawExchange(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => c.write(bytes));
    c.on('error', () => resolve());
    c.on('close', () => resolve());
    c.resume();
  });
}

test('handle() on a client stream that is already gone records the ending instead of throwing or hanging', async () => {
  const records = new MemoryRecords();
  const engine = new InspectionEngine({ ca: pki.ca, untrustedCa: pki.untrusted, trust: pki.trust, records });
  const client = new PassThrough();
  client.destroy();
  const upstream = new net.Socket();
  expect(() => engine.handle(client, upstream, { user: 'u', peer: 'p', clientAddress: '10.0.0.2', clientPort: 1, dstAddress: '127.0.0.1', dstPort: 443, startedAt: Date.now() })).not.toThrow();
  await sleep(50);
  expect(records.ofType('flow_end')).toEqual([expect.objectContaining({ result: 'client_hello_failed', reason: 'client_closed' })]);
  expect(upstream.destroyed).toBe(true);
});
