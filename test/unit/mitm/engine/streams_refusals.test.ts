// The engine's stream adapter where a flow is not decrypted, over in-memory
// connections with real node:tls on a fake clock: what a refused client sees
// (the TLS alert the core chose), a pinned app learned and then relayed to
// the genuine origin (its own certificate, after the engine's probe proved
// the name), aborted handshakes that are no evidence, traffic that is not
// TLS, and the deadline for a client that sends nothing.

import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PinningTracker } from '../../../../mitm/pinning';
import { removeTempDirs } from '../ca_helpers';
import { connectTo, duplexPair, until } from '../memory_streams';
import { EngineOverMemory, get, handshake, originCert, pinnedAppRefuses } from './adapter';
import { type Pki, fixedPolicy, helloBytes, makePki } from './machine';
import { issueCert } from '../../../helpers/pki';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const HOST = 'pinned.test';
const SSH_GREETING = 'SSH-2.0-OpenSSH_9.6\r\n';

function genuineOrigin(): { server: https.Server; fingerprint: string; handshakes: () => number } {
  const cert = originCert(pki, HOST);
  const server = https.createServer(cert, (_q, s) => s.end('origin says hi'));
  let n = 0;
  server.on('secureConnection', () => n++);
  return { server, fingerprint: cert.fingerprint, handshakes: () => n };
}

/** A client that trusts only the origin's own root, as a pinned app does: the leaf it got, or its error. */
async function pinnedAppConnects(eut: EngineOverMemory): Promise<string> {
  const r = await handshake(eut.connect(), { servername: HOST, ca: [pki.root.pem] });
  if (!r.ok) return r.code;
  r.socket.destroy();
  return (r.peer as tls.PeerCertificate & { fingerprint256: string }).fingerprint256;
}

describe('pinned apps', () => {
  test('three unknown_ca alerts learn the host; the next flow reaches the genuine origin raw (same leaf fingerprint) after the engine\'s own probe proved the name', async () => {
    const genuine = genuineOrigin();
    const eut = new EngineOverMemory(pki, genuine.server, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    for (let i = 1; i <= 3; i++) {
      expect(await pinnedAppRefuses(eut.connect(), HOST)).not.toBeNull();
      await eut.ended(i);
    }
    expect(eut.records.ofType('tls_client_rejected')).toEqual([1, 2, 3].map((failures) => expect.objectContaining({ alert: 'unknown_ca', failures })));
    expect(eut.dialed).toBe(0);
    expect(await pinnedAppConnects(eut)).toBe(genuine.fingerprint);
    await eut.ended(4);
    expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'pinned-learned', verified: 'probe' })]);
    expect(eut.dialed).toBe(1);
    expect(eut.engine.counters['bypass.probes']).toBe(1);
  });

  test('a client that closes, resets, or verifies only after the handshake and then drops it is not learned, and ends as closed_before_finished', async () => {
    const hello = await helloBytes(HOST);
    const eut = new EngineOverMemory(pki, genuineOrigin().server, { pinning: { tracker: new PinningTracker({ threshold: 1 }) } });
    for (const how of ['close', 'reset'] as const) {
      const end = eut.connect();
      end.on('error', () => undefined);
      end.write(hello);
      end.once('data', () => (how === 'reset' ? end.destroy(new Error('reset')) : end.end()));
    }
    // node:tls finishes the handshake, then closes without an alert when verification fails.
    expect((await handshake(eut.connect(), { servername: HOST, ca: [pki.root.pem] })).ok).toBe(false);
    await eut.ended(3);
    expect(eut.records.ofType('flow_end')).toEqual(Array(3).fill(expect.objectContaining({ result: 'client_handshake_failed', clientEnd: { kind: 'closed_before_finished' } })));
    expect(eut.records.ofType('tls_client_rejected')).toEqual([]);
  });

  test('the learned name sent to a server that cannot prove it is inspected and refused with handshake_failure, never relayed raw', async () => {
    const tracker = new PinningTracker({ threshold: 1 });
    tracker.recordFailure('alice', HOST, Date.now());
    const c = issueCert({ cn: HOST, dns: [HOST], ips: ['127.0.0.1'] });
    const impostor = https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('impostor'));
    const eut = new EngineOverMemory(pki, impostor, { pinning: { tracker } });
    expect(await pinnedAppConnects(eut)).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    await eut.ended(1);
    expect(eut.records.ofType('tls_bypass_refused')).toEqual([expect.objectContaining({ bypass: 'pinned-learned', reason: 'self_signed' })]);
    expect(eut.records.ofType('flow_end')[0]).toMatchObject({ mode: 'inspect', result: 'upstream_rejected', reason: 'self_signed' });
  });

  test('a bypass by a rule without names is relayed raw without a probe: the client sees the origin\'s own certificate', async () => {
    const genuine = genuineOrigin();
    const policy = fixedPolicy({ action: 'bypass', reason: 'policy-bypass', verify: false, unverified: 'inspect' });
    const eut = new EngineOverMemory(pki, genuine.server, { policy });
    expect(await pinnedAppConnects(eut)).toBe(genuine.fingerprint);
    await eut.ended(1);
    expect(eut.dialed).toBe(0);
    expect(policy.undecryptedSeen).toEqual(['policy-bypass']);
  });
});

describe('refusals the client sees', () => {
  test('a block by policy: the client gets access_denied and the origin never sees a TLS handshake', async () => {
    const genuine = genuineOrigin();
    const eut = new EngineOverMemory(pki, genuine.server, { policy: fixedPolicy({ action: 'block' }) });
    const r = await handshake(eut.connect(), { servername: HOST, ca: [pki.ca.certPem] });
    expect(r).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
    await eut.ended(1);
    expect(genuine.handshakes()).toBe(0);
  });

  test('an upstream that is not TLS at all is refused with an internal_error alert, in untrusted-ca mode too', async () => {
    const plain = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const eut = new EngineOverMemory(pki, plain, { tls: { onUpstreamError: 'untrusted-ca', revocation: 'off' } });
    const r = await handshake(eut.connect(), { servername: 'plain.test', ca: [pki.untrusted.certPem] });
    expect(r).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR' });
    await eut.ended(1);
    expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: 'tls_handshake_failed', outcome: 'block' });
  });

  test('untrusted-ca mode: a client trusting the company CA fails on the untrusted leaf; one that accepts the warning reaches the origin', async () => {
    const c = issueCert({ cn: 'self.test', dns: ['self.test'] });
    const self = https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('origin body'));
    const eut = new EngineOverMemory(pki, self, { tls: { onUpstreamError: 'untrusted-ca', revocation: 'off' } });
    const refused = await handshake(eut.connect(), { servername: 'self.test', ca: [pki.ca.certPem] });
    expect(refused.ok).toBe(false);
    const res = await get(eut, '/', { servername: 'self.test', ca: pki.untrusted.certPem });
    expect(res.body.toString()).toBe('origin body');
    await eut.ended(2);
    expect(eut.records.ofType('flow_end')[1]).toMatchObject({ mode: 'inspect', issuer: 'untrusted' });
  });
});

describe('revocation, with a responder that cannot be reached', () => {
  const unreachable = (): Promise<never> => Promise.reject(new Error('ECONNREFUSED'));
  const orphan = (): https.Server => https.createServer(originCert(pki, 'orphan.test', { ocspUrl: 'http://ocsp.orphan.test/' }), (_q, s) => s.end('ok'));

  test('soft: allowed, and the skipped check is recorded', async () => {
    const eut = new EngineOverMemory(pki, orphan(), { tls: { revocation: 'soft' }, fetch: unreachable });
    const res = await get(eut, '/', { servername: 'orphan.test', ca: pki.ca.certPem });
    expect(res.body.toString()).toBe('ok');
    await eut.ended(1);
    expect(eut.records.ofType('tls_revocation_soft_fail')).toEqual([expect.objectContaining({ host: 'orphan.test' })]);
  });

  test('hard: refused as revocation_unknown', async () => {
    const eut = new EngineOverMemory(pki, orphan(), { tls: { revocation: 'hard' }, fetch: unreachable });
    expect((await handshake(eut.connect(), { servername: 'orphan.test', ca: [pki.ca.certPem] })).ok).toBe(false);
    await eut.ended(1);
    expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: 'revocation_unknown' });
  });
});

describe('traffic that is not TLS', () => {
  test('blocked by default: nothing reaches the origin, and a TLS flow after it through the same engine is still inspected', async () => {
    let received = 0;
    const counting = net.createServer((s) => s.on('data', (c: Buffer) => (received += c.length)));
    const eut = new EngineOverMemory(pki, counting);
    const end = eut.connect();
    end.on('error', () => undefined);
    end.end(`GET /exfil?token=${randomBytes(8).toString('hex')} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await eut.ended(1);
    expect(received).toBe(0);
    eut.to(https.createServer(originCert(pki, 'after.test'), (_q, s) => s.end('inspected')));
    expect((await get(eut, '/', { servername: 'after.test', ca: pki.ca.certPem })).body.toString()).toBe('inspected');
  });

  test('with nonTls allow, arbitrary bytes reach the origin exactly as sent, the first read included, and its answer after EOF comes back', async () => {
    const received: Buffer[] = [];
    const sink = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', (c: Buffer) => received.push(c));
      s.on('end', () => s.end('bye'));
    });
    const eut = new EngineOverMemory(pki, sink, { nonTls: 'allow' });
    const payload = Buffer.concat([Buffer.from(SSH_GREETING), randomBytes(200_000)]);
    const end = eut.connect();
    let reply = '';
    end.on('data', (d: Buffer) => (reply += d.toString()));
    end.end(payload);
    await until('the reply', () => reply === 'bye');
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  test('with nonTls allow, a server-speaks-first protocol works: the greeting reaches the client, then both directions flow', async () => {
    const echo = net.createServer((s) => {
      s.write(SSH_GREETING);
      s.on('data', (c: Buffer) => s.write(`echo:${c.toString()}`));
    });
    const eut = new EngineOverMemory(pki, echo, { nonTls: 'allow', timeouts: { clientHelloMs: 120_000 } });
    const end = eut.connect();
    let got = '';
    end.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === SSH_GREETING) end.write('hello');
    });
    await until('the echo', () => got.endsWith('echo:hello'));
    expect(got).toBe(`${SSH_GREETING}echo:hello`);
    end.destroy();
    await eut.ended(1);
    expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', from: 'server', outcome: 'allow' })]);
  });
});

describe('the clock and streams already gone', () => {
  test('a client that sends nothing is closed when the fake clock passes the ClientHello deadline', async () => {
    const eut = new EngineOverMemory(pki, genuineOrigin().server, { timeouts: { clientHelloMs: 200 } });
    const end = eut.connect();
    end.on('error', () => undefined);
    end.resume();
    eut.clock.advance(199);
    expect(eut.records.ofType('flow_end')).toEqual([]);
    eut.clock.advance(1);
    const [ended] = await eut.ended(1);
    expect(ended).toMatchObject({ result: 'client_hello_failed', reason: 'client_hello_timeout' });
    await until('the client to see its connection closed', () => end.readableEnded);
    expect(eut.clock.pending).toBe(0);
  });

  test('a client stream that is already gone is recorded as such and the upstream is closed, without throwing', async () => {
    const eut = new EngineOverMemory(pki, genuineOrigin().server);
    const [, engineSide] = duplexPair();
    engineSide.destroy();
    const upstream = connectTo(genuineOrigin().server);
    expect(() => eut.engine.handle(engineSide, upstream, { user: 'u', peer: 'p', clientAddress: '10.0.0.2', clientPort: 1, dstAddress: '127.0.0.1', dstPort: 443, startedAt: 0 })).not.toThrow();
    await eut.ended(1);
    expect(eut.records.ofType('flow_end')).toEqual([expect.objectContaining({ result: 'client_hello_failed', reason: 'client_closed' })]);
    expect(upstream.destroyed).toBe(true);
  });
});
