// Revocation through the engine, against a real OCSP responder (openssl
// ocsp): a revoked upstream is refused in every mode but 'off'; an
// unreachable responder is logged and allowed in 'soft', refused in 'hard'.
// Skipping revocation checks silently is one of the failures of real products.

import * as https from 'node:https';
import * as net from 'node:net';
import { RevocationMode } from '../../../mitm/upstream';
import { OcspResponder, makeLeaf, randomSerialHex, startOcspResponder } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { EngineUnderTest, Pki, close, get, handshake, listen, makePki, withEngine } from './engine_harness';

let pki: Pki;
let responder: OcspResponder;
let revokedLeaf: ReturnType<typeof makeLeaf>;
let goodLeaf: ReturnType<typeof makeLeaf>;
let deadPort: number;

beforeAll(async () => {
  pki = makePki();
  // A port that was open a moment ago and is closed now: connection refused, on loopback.
  const tmp = net.createServer();
  deadPort = await listen(tmp);
  await close(tmp);
  // Serials are chosen first: the responder's index needs them and the leaves need its URL.
  const revokedSerial = randomSerialHex();
  const goodSerial = randomSerialHex();
  responder = await startOcspResponder({
    ca: pki.intermediate,
    entries: [
      { serialHex: revokedSerial, status: 'R', reason: 'keyCompromise', subjectLine: '/CN=revoked.test' },
      { serialHex: goodSerial, status: 'V', subjectLine: '/CN=good.test' },
    ],
  });
  revokedLeaf = makeLeaf(pki.intermediate, { dns: ['revoked.test'], ocspUrl: responder.url, serialHex: revokedSerial });
  goodLeaf = makeLeaf(pki.intermediate, { dns: ['good.test'], ocspUrl: responder.url, serialHex: goodSerial });
});
afterAll(async () => {
  await responder?.stop();
  removeTempDirs();
});

function through<T>(leaf: ReturnType<typeof makeLeaf>, revocation: RevocationMode, run: (eut: EngineUnderTest) => Promise<T>): Promise<T> {
  const origin = https.createServer({ key: leaf.keyPem, cert: leaf.pem + pki.intermediate.pem }, (_q, s) => s.end('ok'));
  return withEngine(pki, origin, run, { tls: { revocation, onUpstreamError: 'block' } });
}

test('a revoked upstream certificate is refused with an alert and recorded as revoked (soft mode)', async () => {
  await through(revokedLeaf, 'soft', async (eut) => {
    const r = await handshake(eut.port, { servername: 'revoked.test', ca: [pki.ca.certPem] });
    expect(r).toEqual({ ok: false, code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
    await eut.ended(1);
    expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: 'revoked', host: 'revoked.test' });
  });
});

test('a certificate the responder vouches for loads normally', async () => {
  await through(goodLeaf, 'hard', async (eut) => {
    const res = await get(eut.port, '/', { servername: 'good.test', ca: pki.ca.certPem });
    expect(res.body.toString()).toBe('ok');
  });
});

describe('responder unreachable', () => {
  let orphan: ReturnType<typeof makeLeaf>;
  beforeAll(() => {
    orphan = makeLeaf(pki.intermediate, { dns: ['orphan.test'], ocspUrl: `http://127.0.0.1:${deadPort}/` });
  });

  test('soft: allowed, and the skipped check is recorded', async () => {
    await through(orphan, 'soft', async (eut) => {
      const res = await get(eut.port, '/', { servername: 'orphan.test', ca: pki.ca.certPem });
      expect(res.body.toString()).toBe('ok');
      await eut.ended(1);
      expect(eut.records.ofType('tls_revocation_soft_fail')).toEqual([expect.objectContaining({ host: 'orphan.test' })]);
    });
  });

  test('hard: refused as revocation_unknown', async () => {
    await through(orphan, 'hard', async (eut) => {
      const r = await handshake(eut.port, { servername: 'orphan.test', ca: [pki.ca.certPem] });
      expect(r.ok).toBe(false);
      await eut.ended(1);
      expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: 'revocation_unknown' });
    });
  });
});
