// The concentrator's own fetches (AIA caIssuers, OCSP) follow URLs from
// certificates that any server can present: the address a URL leads to is
// checked after DNS resolution and before connecting, and a refusal is an
// ordinary fetch error value. A real node:http server on loopback plays the
// target that must not be reached.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AiaFetcher, createHttpFetch, type FetchAddressCheck, type HttpRequest } from '../../../../mitm/upstream';

let server: http.Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('metadata'));
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const refuseLoopback: FetchAddressCheck = (address) => (address === '127.0.0.1' || address === '::1' ? `${address} is loopback` : null);
const get = (url: string): HttpRequest => ({ url, method: 'GET', timeoutMs: 5000, maxBytes: 1024 });

test('a URL naming a refused IP literal is refused before any connection', async () => {
  const before = connections;
  const seen: Array<[string, number]> = [];
  const fetch = createHttpFetch((a, p) => (seen.push([a, p]), refuseLoopback(a, p)));
  const res = await fetch(get(`http://127.0.0.1:${port}/latest/meta-data/`));
  expect(res).toMatchObject({ ok: false, error: 'egress_denied' });
  if (!res.ok) expect(res.detail).toContain('127.0.0.1 is loopback');
  expect(seen).toEqual([['127.0.0.1', port]]);
  expect(connections).toBe(before);
});

test('a host name is checked by the address it resolves to (localhost is loopback)', async () => {
  const before = connections;
  const res = await createHttpFetch(refuseLoopback)(get(`http://localhost:${port}/`));
  expect(res).toMatchObject({ ok: false, error: 'egress_denied' });
  expect(connections).toBe(before);
});

test('an allowed address is fetched as before', async () => {
  const res = await createHttpFetch(() => null)(get(`http://localhost:${port}/`));
  expect(res).toMatchObject({ ok: true, status: 200 });
  if (res.ok) expect(res.body.toString()).toBe('metadata');
});

test('an IPv6 literal in brackets is checked without its brackets', async () => {
  const res = await createHttpFetch(refuseLoopback)(get('http://[::1]:9/'));
  expect(res).toMatchObject({ ok: false, error: 'egress_denied' });
});

test("an AIA fetch made for one flow uses that flow's checked fetcher", async () => {
  const aia = new AiaFetcher();
  const res = await aia.fetchIssuer(`http://127.0.0.1:${port}/issuer.der`, createHttpFetch(refuseLoopback));
  expect(res.ok).toBe(false);
  if (!res.ok) expect(res.detail).toContain('refused: 127.0.0.1 is loopback');
});
