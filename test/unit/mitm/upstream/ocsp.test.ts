// OCSP (RFC 6960) against a real `openssl ocsp` responder on loopback:
// our request must be one a stock responder answers, and every answer must be
// verified before it is believed (a forged "good" must never pass).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HttpFetcher,
  OcspCache,
  RevocationResult,
  certIdFor,
  checkRevocation,
  encodeOcspRequest,
  httpFetch,
  verifyOcspResponse,
} from '../../../../mitm/upstream';
import {
  OcspResponder,
  TestCert,
  daysFromNow,
  makeIntermediate,
  makeLeaf,
  makeOcspSigner,
  makeRoot,
  randomSerialHex,
  startOcspResponder,
} from '../../../helpers/pki';

const REVOKED_AT = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));

let root: TestCert;
let ca: TestCert;
let delegated: TestCert;
let goodLeaf: TestCert;
let revokedLeaf: TestCert;
let unknownLeaf: TestCert;
const responders: OcspResponder[] = [];
let delegatedResponder: OcspResponder;

/** Leaves whose AIA OCSP URL is `url`, with serials that `entries` registered beforehand. */
function leafFor(url: string, serialHex: string, host: string): TestCert {
  return makeLeaf(ca, { dns: [host], ocspUrl: url, serialHex });
}

async function responder(opts: Parameters<typeof startOcspResponder>[0]): Promise<OcspResponder> {
  const r = await startOcspResponder(opts);
  responders.push(r);
  return r;
}

beforeAll(async () => {
  root = makeRoot();
  ca = makeIntermediate(root);
  delegated = makeOcspSigner(ca);
  const serials = { good: randomSerialHex(), revoked: randomSerialHex(), unknown: randomSerialHex() };
  delegatedResponder = await responder({
    ca,
    signer: delegated,
    entries: [
      { serialHex: serials.good, status: 'V' },
      { serialHex: serials.revoked, status: 'R', revokedAt: REVOKED_AT, reason: 'keyCompromise' },
    ],
  });
  goodLeaf = leafFor(delegatedResponder.url, serials.good, 'good.example');
  revokedLeaf = leafFor(delegatedResponder.url, serials.revoked, 'revoked.example');
  unknownLeaf = leafFor(delegatedResponder.url, serials.unknown, 'unknown.example');
});

afterAll(async () => {
  for (const r of responders) await r.stop();
});

const check = (leaf: TestCert, mode: 'soft' | 'hard' | 'off' = 'soft', extra: Partial<Parameters<typeof checkRevocation>[2]> = {}): Promise<RevocationResult> =>
  checkRevocation(leaf.cert, ca.cert, { mode, cache: new OcspCache(), timeoutMs: 3_000, now: new Date(), ...extra });

/** The raw DER a responder gives for (leaf, ca), as a server would staple it. */
async function fetchResponse(leaf: TestCert, url: string): Promise<Buffer> {
  const res = await httpFetch({ url, method: 'POST', body: encodeOcspRequest(certIdFor(leaf.cert, ca.cert)), contentType: 'application/ocsp-request', timeoutMs: 3_000, maxBytes: 65_536 });
  if (!res.ok) throw new Error(res.detail);
  return res.body;
}

const refuseFetch: HttpFetcher = async () => {
  throw new Error('must not fetch');
};

async function closedPortUrl(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return `http://127.0.0.1:${port}/`;
}

describe('answers from a delegated responder (RFC 6960 4.2.2.2)', () => {
  it('reports good for a valid certificate', async () => {
    const result = await check(goodLeaf);
    expect(result).toMatchObject({ status: 'good', source: 'responder', allow: true });
  });

  it('reports revoked with its time and reason, and blocks even in soft mode', async () => {
    const result = await check(revokedLeaf, 'soft');
    expect(result).toMatchObject({ status: 'revoked', reason: 'keyCompromise', revokedAt: REVOKED_AT, allow: false, failure: 'revoked' });
  });

  it('reports unknown for a serial the responder does not know, and blocks it', async () => {
    const result = await check(unknownLeaf, 'soft');
    expect(result).toMatchObject({ status: 'unknown', allow: false, failure: 'revocation_unknown' });
  });

  it('serves a repeated check from the cache until nextUpdate', async () => {
    const cache = new OcspCache();
    let fetches = 0;
    const counting: HttpFetcher = (req) => {
      fetches++;
      return httpFetch(req);
    };
    await check(goodLeaf, 'soft', { cache, fetch: counting });
    const second = await check(goodLeaf, 'soft', { cache, fetch: counting });
    expect({ fetches, source: second.status === 'good' ? second.source : second.status }).toEqual({ fetches: 1, source: 'cache' });
  });

  it('does not check anything in off mode', async () => {
    const result = await check(revokedLeaf, 'off', { fetch: refuseFetch });
    expect(result).toEqual({ status: 'not_checked', allow: true });
  });
});

it('encodes a request openssl reads as a SHA-1 CertID for the leaf serial (RFC 6960 4.1.1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sightline-ocspreq-'));
  writeFileSync(join(dir, 'req.der'), encodeOcspRequest(certIdFor(goodLeaf.cert, ca.cert)));
  const out = spawnSync('openssl', ['ocsp', '-reqin', join(dir, 'req.der'), '-req_text', '-noverify'], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  expect(out.stdout).toMatch(/Hash Algorithm: sha1/);
  expect(out.stdout).toContain(`Serial Number: ${goodLeaf.serialHex}`);
});

describe('response verification', () => {
  it('accepts a response signed by the issuing CA itself', async () => {
    const serial = randomSerialHex();
    const direct = await responder({ ca, entries: [{ serialHex: serial, status: 'V' }] });
    const leaf = leafFor(direct.url, serial, 'direct.example');
    expect(await check(leaf)).toMatchObject({ status: 'good' });
  });

  it('rejects a tampered response (good flipped to unknown) as bad_signature', async () => {
    const body = await fetchResponse(goodLeaf, delegatedResponder.url);
    const serial = Buffer.from(goodLeaf.serialHex, 'hex');
    const at = body.indexOf(Buffer.concat([serial, Buffer.from([0x80, 0x00])]));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(body);
    tampered[at + serial.length] = 0x82; // CertStatus good [0] → unknown [2]
    const parsed = verifyOcspResponse(tampered, goodLeaf.cert, ca.cert, new Date());
    expect(parsed.ok ? 'ok' : parsed.error).toBe('bad_signature');
  });

  it('does not let a tampered response count as good: hard mode blocks it', async () => {
    const body = await fetchResponse(goodLeaf, delegatedResponder.url);
    const tampered = Buffer.from(body);
    const serial = Buffer.from(goodLeaf.serialHex, 'hex');
    tampered[body.indexOf(serial) + serial.length] = 0x82;
    const tamperingFetch: HttpFetcher = async () => ({ ok: true, status: 200, contentType: 'application/ocsp-response', body: tampered });
    const result = await check(goodLeaf, 'hard', { fetch: tamperingFetch });
    expect(result).toMatchObject({ status: 'error', error: 'bad_signature', allow: false, failure: 'revocation_unknown' });
  });

  it('rejects a responder certificate without id-kp-OCSPSigning', async () => {
    const serial = randomSerialHex();
    const notResponder = makeLeaf(ca, { dns: ['not-a-responder.example'] });
    const r = await responder({ ca, signer: notResponder, entries: [{ serialHex: serial, status: 'V' }] });
    const leaf = leafFor(r.url, serial, 'eku.example');
    expect(await check(leaf, 'hard')).toMatchObject({ status: 'error', error: 'unauthorized_responder', allow: false });
  });

  it('rejects a delegated responder issued by another CA', async () => {
    const serial = randomSerialHex();
    const foreign = makeOcspSigner(makeIntermediate(root, { cn: 'Sibling CA' }));
    const r = await responder({ ca, signer: foreign, entries: [{ serialHex: serial, status: 'V' }] });
    const leaf = leafFor(r.url, serial, 'foreign.example');
    expect(await check(leaf, 'hard')).toMatchObject({ status: 'error', error: 'unauthorized_responder' });
  });

  it('rejects a response for a different certificate (CertID mismatch)', async () => {
    const other = await fetchResponse(revokedLeaf, delegatedResponder.url);
    const parsed = verifyOcspResponse(other, goodLeaf.cert, ca.cert, new Date());
    expect(parsed.ok ? 'ok' : parsed.error).toBe('certid_mismatch');
  });

  it('rejects a response past its nextUpdate as stale', async () => {
    const body = await fetchResponse(goodLeaf, delegatedResponder.url);
    const parsed = verifyOcspResponse(body, goodLeaf.cert, ca.cert, daysFromNow(2));
    expect(parsed.ok ? 'ok' : parsed.error).toBe('stale');
  });
});

describe('stapled responses (RFC 6066 8)', () => {
  it('uses a valid staple without contacting the responder', async () => {
    const stapled = await fetchResponse(goodLeaf, delegatedResponder.url);
    expect(await check(goodLeaf, 'hard', { stapled, fetch: refuseFetch })).toMatchObject({ status: 'good', source: 'stapled' });
  });

  it('blocks on a stapled revoked response', async () => {
    const stapled = await fetchResponse(revokedLeaf, delegatedResponder.url);
    expect(await check(revokedLeaf, 'soft', { stapled, fetch: refuseFetch })).toMatchObject({ status: 'revoked', source: 'stapled', allow: false });
  });

  it('ignores a staple for another certificate and asks the responder', async () => {
    const wrongStaple = await fetchResponse(goodLeaf, delegatedResponder.url);
    expect(await check(revokedLeaf, 'soft', { stapled: wrongStaple })).toMatchObject({ status: 'revoked', source: 'responder' });
  });
});

describe('unreachable responder: soft vs hard policy', () => {
  let unreachable: TestCert;
  beforeAll(async () => {
    unreachable = makeLeaf(ca, { dns: ['down.example'], ocspUrl: await closedPortUrl() });
  });

  it('soft mode allows the connection and reports the failure', async () => {
    const reported: string[] = [];
    const result = await check(unreachable, 'soft', { onSoftFail: (o) => reported.push(o.error) });
    expect({ allow: result.allow, status: result.status, reported }).toEqual({ allow: true, status: 'error', reported: ['network'] });
  });

  it('hard mode blocks with revocation_unknown', async () => {
    expect(await check(unreachable, 'hard')).toMatchObject({ status: 'error', error: 'network', allow: false, failure: 'revocation_unknown' });
  });

  it('does not ask a responder that just failed again, so soft mode does not stall every flow', async () => {
    const cache = new OcspCache();
    let fetches = 0;
    const counting: HttpFetcher = (req) => {
      fetches++;
      return httpFetch(req);
    };
    await check(unreachable, 'soft', { cache, fetch: counting });
    const second = await check(unreachable, 'soft', { cache, fetch: counting });
    expect({ fetches, status: second.status, allow: second.allow }).toEqual({ fetches: 1, status: 'error', allow: true });
  });

  it('treats a fetcher that throws as an unreachable responder, not as an exception', async () => {
    const result = await check(unreachable, 'hard', { fetch: refuseFetch });
    expect(result).toMatchObject({ status: 'error', error: 'network', allow: false });
  });

  it('a responder that never answers is abandoned at the timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const leaf = makeLeaf(ca, { dns: ['slow.example'], ocspUrl: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/` });
    const result = await check(leaf, 'hard', { timeoutMs: 200 });
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
    expect(result).toMatchObject({ status: 'error', error: 'timeout', allow: false });
  });

  it('hard mode blocks a leaf that names no OCSP responder', async () => {
    const noUrl = makeLeaf(ca, { dns: ['nourl.example'] });
    expect(await check(noUrl, 'hard')).toMatchObject({ error: 'no_ocsp_url', allow: false });
  });

  it('soft mode allows a leaf that names no OCSP responder', async () => {
    const noUrl = makeLeaf(ca, { dns: ['nourl.example'] });
    expect(await check(noUrl, 'soft')).toMatchObject({ error: 'no_ocsp_url', allow: true });
  });
});
