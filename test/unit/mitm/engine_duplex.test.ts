// The userspace TCP stack hands the engine a plain Duplex, not a net.Socket:
// node:tls then reads through a JS stream wrapper instead of a libuv handle.
// The replayed ClientHello, backpressure, half-close and the pinned splice
// must work on that path too.

import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PinningTracker } from '../../../mitm/pinning';
import { removeTempDirs } from './ca_helpers';
import { EngineSetup, EngineUnderTest, Pki, get, handshake, makePki, originCert, sha256, withEngine } from './engine_harness';
import { sClient } from './tls_clients';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const withDuplexEngine = <T>(origin: net.Server, run: (eut: EngineUnderTest) => Promise<T>, setup: EngineSetup = {}): Promise<T> =>
  withEngine(pki, origin, run, { ...setup, genericDuplex: true });

test('a 20 MB download through a generic Duplex client stream arrives byte-equal', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const origin = https.createServer(originCert(pki, 'dx.test'), (_q, res) => res.end(big));
  await withDuplexEngine(origin, async (eut) => {
    const res = await get(eut.port, '/', { servername: 'dx.test', ca: pki.ca.certPem });
    expect(sha256(res.body)).toBe(sha256(big));
    expect((await eut.ended(1))[0]).toMatchObject({ mode: 'inspect', result: 'closed' });
  });
});

test('half-close through a generic Duplex: the answer after EOF still arrives', async () => {
  const { key, cert } = originCert(pki, 'dxhalf.test');
  const origin = tls.createServer({ key, cert, allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`read ${n}`));
  });
  await withDuplexEngine(origin, async (eut) => {
    const r = await handshake(eut.port, { servername: 'dxhalf.test', ca: [pki.ca.certPem], allowHalfOpen: true } as tls.ConnectionOptions);
    if (!r.ok) throw new Error(r.code);
    r.socket.end(Buffer.alloc(70_000, 2));
    const chunks: Buffer[] = [];
    for await (const c of r.socket) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('read 70000');
  });
});

test('a pinned client is learned and then spliced through a generic Duplex', async () => {
  const origin = https.createServer(originCert(pki, 'dxpin.test'), (_q, s) => s.end('hi'));
  await withDuplexEngine(origin, async (eut) => {
    for (let i = 1; i <= 2; i++) {
      expect((await sClient(eut.port, 'dxpin.test', pki.root.pem)).verified).toBe(false);
      await eut.ended(i);
    }
    const r = await sClient(eut.port, 'dxpin.test', pki.root.pem);
    expect(r.verified).toBe(true);
    expect(r.leaf?.issuer).toContain('Sightline Test Intermediate');
  }, { pinning: { tracker: new PinningTracker({ threshold: 2 }) } });
});

test('with nonTls allow, non-TLS bytes through a generic Duplex reach the origin exactly', async () => {
  const received: Buffer[] = [];
  const origin = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (c: Buffer) => received.push(c));
    s.on('end', () => s.end('bye'));
  });
  await withDuplexEngine(origin, async (eut) => {
    const payload = Buffer.concat([Buffer.from('PING\r\n'), randomBytes(200_000)]);
    await new Promise<void>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: eut.port, allowHalfOpen: true }, () => c.end(payload));
      c.resume();
      c.on('end', () => resolve());
      c.on('error', reject);
    });
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  }, { nonTls: 'allow' });
});
