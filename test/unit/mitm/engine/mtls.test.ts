// Mutual TLS and ECH in the engine's core. A server that demands a client
// certificate cannot be inspected (the concentrator has no certificate to
// present), so the first flow that meets one teaches the engine to relay
// that (user, host) undecrypted, and the next flow is relayed raw once the
// server proved its name, whatever TLS version it speaks: TLS 1.3 says so
// with a certificate_required alert (possibly after the session was handed
// over), TLS 1.2 with a handshake_failure that a scan of its first flight
// explains. A ClientHello with encrypted_client_hello is answered with a
// certificate for its outer (public) name, so an ECH client sees ECH
// rejected and falls back to a plain ClientHello.

import { X509Certificate } from 'node:crypto';
import { ALERT_HANDSHAKE_FAILURE, alertRecord } from '../../../../mitm/alerts';
import { EXT_ENCRYPTED_CLIENT_HELLO } from '../../../../mitm/client_hello';
import { CERTIFICATE_REQUIRED_CODE, HANDSHAKE_FAILURE_CODE } from '../../../../mitm/upstream';
import { removeTempDirs } from '../ca_helpers';
import { withExtension } from '../tls_clients';
import { FlowUnderTest, type Pki, coreOf, fixedPolicy, helloBytes, inspectedFlow, makePki, originLeaf } from './machine';

let pki: Pki;
const HOST = 'mtls.test';
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

describe.each([
  ['TLSv1.3', (f: FlowUnderTest) => f.upstreamFailed('client_certificate_required')],
  ['TLSv1.2', (f: FlowUnderTest) => {
    f.upstreamFailed('tls_handshake_failed', { code: HANDSHAKE_FAILURE_CODE });
    expect(f.last('scan_client_certificate_demand')).toEqual({ type: 'scan_client_certificate_demand', servername: HOST, alpn: [] });
    f.feed({ type: 'client_certificate_demand', demanded: true });
  }],
] as const)('a server demanding a client certificate (%s)', (_version, demand) => {
  test('the first flow fails with handshake_failure and is learned; the next is relayed raw after the server proved its name', async () => {
    const core = coreOf(pki);
    const policy = fixedPolicy({ action: 'inspect' });
    const first = await inspectedFlow(core, HOST, { policy });
    demand(first);
    expect(first.last('refuse').data).toEqual(alertRecord(ALERT_HANDSHAKE_FAILURE));
    expect(first.destroyed).toEqual(['server_tls', 'server']);
    expect(first.records('tls_mtls_learned')).toEqual([expect.objectContaining({ host: HOST, ttlSeconds: 43_200 })]);
    expect(first.ended).toMatchObject({ result: 'mtls_required', undecrypted: 'mtls' });
    expect(core.mtls.has('alice', HOST, first.now)).toBe(true);

    const next = await inspectedFlow(core, HOST, { policy });
    next.feed({ type: 'probe_done', result: { ok: true, notAfter: next.now + 86_400_000 } });
    expect(next.last('relay').layer).toBe('raw');
    expect(next.records('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'mtls', verified: 'probe' })]);
    next.relayEnd();
    expect([first, next].map((f) => f.last('undecrypted').reason)).toEqual(['mtls', 'mtls']);
  });
});

test('a TLS 1.2 handshake_failure from a server that asks for no client certificate is an ordinary refusal', async () => {
  const f = await inspectedFlow(coreOf(pki), HOST);
  f.upstreamFailed('tls_handshake_failed', { code: HANDSHAKE_FAILURE_CODE });
  f.feed({ type: 'client_certificate_demand', demanded: false });
  expect(f.records('tls_mtls_learned')).toEqual([]);
  expect(f.ended).toMatchObject({ result: 'upstream_rejected', reason: 'tls_handshake_failed' });
});

describe('a demand that arrives late', () => {
  test('after the session was handed to the client (a slow server): learned when the relay ends', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.clientTlsOk();
    f.feed({ type: 'upstream_certificate_required' });
    f.relayEnd({ end: 'server_error', detail: CERTIFICATE_REQUIRED_CODE });
    expect(f.records('tls_mtls_learned')).toHaveLength(1);
    expect(f.ended).toMatchObject({ result: 'server_error', undecrypted: 'mtls' });
  });

  test('in the relay\'s own ending only (the alert was the relay\'s error): learned all the same', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.clientTlsOk();
    f.relayEnd({ end: 'server_error', detail: CERTIFICATE_REQUIRED_CODE });
    expect(f.records('tls_mtls_learned')).toHaveLength(1);
  });

  test('while the client is still finishing its handshake with us: learned when that handshake ends', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.feed({ type: 'upstream_certificate_required' });
    f.clientTlsFailed({ kind: 'closed_before_finished' });
    expect(f.records('tls_mtls_learned')).toHaveLength(1);
    expect(f.ended).toMatchObject({ result: 'client_handshake_failed', undecrypted: 'protocol-error' });
  });

  test('from a session refused and shown under the untrusted CA it is not learned', async () => {
    const f = await inspectedFlow(coreOf(pki, { tls: { onUpstreamError: 'untrusted-ca' } }), HOST);
    f.upstreamFailed('self_signed', { sessionOpen: true, leaf: originLeaf(pki, HOST) });
    f.clientTlsOk();
    f.feed({ type: 'upstream_certificate_required' });
    f.relayEnd();
    expect(f.records('tls_mtls_learned')).toEqual([]);
  });
});

test('another user is not exempted by what one user\'s flow learned', async () => {
  const core = coreOf(pki);
  const f = await inspectedFlow(core, HOST);
  f.upstreamFailed('client_certificate_required');
  expect(core.mtls.has('bob', HOST, f.now)).toBe(false);
  expect((await inspectedFlow(core, HOST, { user: 'bob' })).of('start_upstream_tls')).toHaveLength(1);
});

describe('Encrypted ClientHello (ECH)', () => {
  const PUBLIC_NAME = 'public.ech.test';
  const ECH_REQUIRED = 121;

  test('a ClientHello with encrypted_client_hello gets a company certificate for its outer name; the client\'s ECH rejection is logged as ech', async () => {
    const seen: Array<[string | null, boolean]> = [];
    const policy = fixedPolicy({ action: 'inspect' });
    const plain = await helloBytes(PUBLIC_NAME, { maxVersion: 'TLSv1.2' });
    const f = new FlowUnderTest(coreOf(pki), { policy: { ...policy, tls: (hello) => (seen.push([hello.sni, hello.hasEch]), policy.tls(hello)) } });
    f.client(withExtension(plain, EXT_ENCRYPTED_CLIENT_HELLO, Buffer.from('00000100012000', 'hex')));
    expect(seen).toEqual([[PUBLIC_NAME, true]]);
    f.upstreamOk(originLeaf(pki, PUBLIC_NAME));
    const leaf = new X509Certificate(f.last('start_client_tls').leaf.certDer);
    expect(leaf.checkHost(PUBLIC_NAME)).toBe(PUBLIC_NAME);
    expect(leaf.checkIssued(pki.ca.x509)).toBe(true);
    f.clientTlsFailed({ kind: 'alert', alert: ECH_REQUIRED });
    expect(f.ended).toMatchObject({ sni: PUBLIC_NAME, undecrypted: 'ech' });
    expect(f.last('undecrypted').reason).toBe('ech');
    expect(f.core.counters.values.ech_client_hello).toBe(1);
    expect(f.core.counters.values.ech_rejected).toBe(1);
  });
});
