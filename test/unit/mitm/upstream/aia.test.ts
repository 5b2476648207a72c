// AIA chasing (RFC 5280 4.2.2.1): a server that forgets its intermediate is
// completed from the caIssuers URL, as browsers do, from a real node:http
// server on loopback; failures stay 'incomplete_chain'.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AiaFetcher, TrustStore, ValidationInput, validateWithAia } from '../../../../mitm/upstream';
import { TestCert, makeIntermediate, makeLeaf, makeRoot } from '../../../helpers/pki';

let root: TestCert;
let intermediate: TestCert;
let trust: TrustStore;
let server: http.Server;
let base: string;
let hits: Record<string, number>;

beforeAll(async () => {
  root = makeRoot();
  intermediate = makeIntermediate(root);
  trust = new TrustStore([root.cert]);
  hits = {};
  const unrelated = makeIntermediate(makeRoot({ cn: 'Unrelated Root' }), { cn: 'Unrelated' });
  const routes: Record<string, { type: string; body: Buffer }> = {
    '/int.der': { type: 'application/pkix-cert', body: intermediate.der },
    '/int.pem': { type: 'application/x-pem-file', body: Buffer.from(intermediate.pem) },
    '/big.der': { type: 'application/pkix-cert', body: Buffer.alloc(200_000, 0x30) },
    '/wrong.der': { type: 'application/pkix-cert', body: unrelated.der },
    '/junk': { type: 'text/html', body: Buffer.from('<html>not a certificate</html>') },
  };
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    hits[path] = (hits[path] ?? 0) + 1;
    const route = routes[path.split('?')[0]];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': route.type }).end(route.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

function input(leaf: TestCert): ValidationInput {
  return { chain: [leaf.cert], hostname: 'www.example.com', ip: '192.0.2.1', now: new Date(), trust, negotiatedProtocol: 'TLSv1.3' };
}

const leafWithAia = (url: string): TestCert => makeLeaf(intermediate, { dns: ['www.example.com'], caIssuersUrl: url });

it('completes a chain that lacks its intermediate from a DER caIssuers URL', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/int.der`)), new AiaFetcher());
  if (!result.ok) throw new Error(result.detail);
  expect(result.path.map((c) => c.fingerprint256)).toEqual([expect.any(String), intermediate.cert.fingerprint256, root.cert.fingerprint256]);
});

it('accepts a PEM body, which some CAs serve', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/int.pem`)), new AiaFetcher());
  expect(result.ok).toBe(true);
});

it('fetches each URL once and serves later chains from the cache', async () => {
  const aia = new AiaFetcher();
  const url = `${base}/int.der?cache-test`;
  const before = hits['/int.der?cache-test'] ?? 0;
  await validateWithAia(input(leafWithAia(url)), aia);
  await validateWithAia(input(leafWithAia(url)), aia);
  expect(hits['/int.der?cache-test'] - before).toBe(1);
});

it('evicts the least recently used URL when the cache is full', async () => {
  const aia = new AiaFetcher({ cacheEntries: 1 });
  await aia.fetchIssuer(`${base}/int.der?a`);
  await aia.fetchIssuer(`${base}/int.der?b`);
  await aia.fetchIssuer(`${base}/int.der?a`);
  expect(hits['/int.der?a']).toBe(2);
});

it('stays incomplete_chain when the URL answers 404', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/missing.der`)), new AiaFetcher());
  expect(result.ok ? 'ok' : [result.reason, /HTTP 404/.test(result.detail)]).toEqual(['incomplete_chain', true]);
});

it('stops reading a body larger than the size cap', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/big.der`)), new AiaFetcher({ maxBytes: 16_384 }));
  expect(result.ok ? 'ok' : [result.reason, /16384 bytes/.test(result.detail)]).toEqual(['incomplete_chain', true]);
});

it('stays incomplete_chain when the body is not a certificate', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/junk`)), new AiaFetcher());
  expect(result.ok ? 'ok' : result.reason).toBe('incomplete_chain');
});

it('does not accept a fetched certificate that is not the issuer', async () => {
  const result = await validateWithAia(input(leafWithAia(`${base}/wrong.der`)), new AiaFetcher());
  expect(result.ok ? 'ok' : result.reason).toBe('incomplete_chain');
});

it('does not follow https caIssuers URLs (they would need validating themselves)', async () => {
  const result = await new AiaFetcher().fetchIssuer('https://127.0.0.1:1/int.der');
  expect(result.ok ? 'ok' : /only http/.test(result.detail)).toBe(true);
});
