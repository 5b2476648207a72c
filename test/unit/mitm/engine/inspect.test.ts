// Inspected flows in the engine's core: the upstream handshake's result
// decides what the client is shown. A validated upstream gets a leaf minted
// by the company CA that mirrors its names, with the ALPN the origin chose;
// a refused one never gives the client a certificate it trusts (issue 5):
// in 'block' mode a fatal alert, in 'untrusted-ca' mode a leaf from the
// untrusted CA, so the client's own warning appears; either way a record
// names the precise reason. These are the failures real products hid.

import { X509Certificate } from 'node:crypto';
import { ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, alertRecord } from '../../../../mitm/alerts';
import type { Command } from '../../../../mitm/engine';
import type { UpstreamError } from '../../../../mitm/upstream';
import { daysFromNow, issueCert, makeLeaf } from '../../../helpers/pki';
import { removeTempDirs } from '../ca_helpers';
import { FlowUnderTest, ORIGIN, type Pki, coreOf, helloBytes, inspectedFlow, makePki, originLeaf } from './machine';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const HOST = 'good.test';

/** The leaf the client is to be shown. */
function leafOf(cmds: Command[]): X509Certificate {
  const start = cmds.find((c): c is Extract<Command, { type: 'start_client_tls' }> => c.type === 'start_client_tls');
  if (!start) throw new Error(`no start_client_tls in ${JSON.stringify(cmds.map((c) => c.type))}`);
  return new X509Certificate(start.leaf.certDer);
}

describe('a validated upstream', () => {
  test('the client is answered with a leaf from the company CA mirroring the origin names, after its own ClientHello is replayed', async () => {
    const hello = await helloBytes(HOST);
    const f = new FlowUnderTest(coreOf(pki));
    f.client(hello.subarray(0, 100), hello.subarray(100));
    const cmds = f.upstreamOk(originLeaf(pki, HOST));
    const leaf = leafOf(cmds);
    expect(leaf.checkIssued(pki.ca.x509)).toBe(true);
    expect(leaf.subjectAltName).toContain(`DNS:${HOST}`);
    expect(leaf.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(f.last('start_client_tls').replay).toEqual(hello);
    expect(f.armedAt('client_handshake')).toBe(f.now + 15_000);
  });

  test('then the decrypted streams are relayed, and the flow ends closed, issuer company, with its byte counts', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.clientTlsOk();
    expect(f.last('relay')).toEqual({ type: 'relay', layer: 'tls', tap: null });
    expect(f.armedAt('client_handshake')).toBeUndefined();
    f.now += 25;
    f.relayEnd({ fromClient: 100, fromServer: 100_000 });
    expect(f.of('close_raw')).toEqual([
      { type: 'close_raw', side: 'client', clean: true, lingerMs: 5_000 }, { type: 'close_raw', side: 'server', clean: true, lingerMs: 5_000 },
    ]);
    expect(f.ended).toMatchObject({
      mode: 'inspect', result: 'closed', host: HOST, sni: HOST, issuer: 'company', bytesFromClient: 100, bytesFromServer: 100_000,
      dst: `${ORIGIN}:443`, client: '10.77.0.2:40000', durationMs: 25,
    });
    expect(f.of('undecrypted')).toEqual([]);
  });

  test('a relay that ended in an error closes the raw streams at once', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.clientTlsOk();
    f.relayEnd({ end: 'server_reset' });
    expect(f.of('close_raw').map((c) => c.clean)).toEqual([false, false]);
    expect(f.ended).toMatchObject({ result: 'server_reset' });
  });

  test('HTTP/2: the client is offered the protocol the origin chose', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST, {}, { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(f.last('start_upstream_tls').alpn).toEqual(['h2', 'http/1.1']);
    f.upstreamOk(originLeaf(pki, HOST), { alpn: 'h2' });
    expect(f.last('start_client_tls').alpn).toBe('h2');
    f.clientTlsOk();
    f.relayEnd();
    expect(f.ended).toMatchObject({ alpn: 'h2' });
  });

  test('an HTTP/1.1-only origin makes the engine refuse h2 to the client: ALPN follows what upstream chose', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST, {}, { ALPNProtocols: ['h2', 'http/1.1'] });
    f.upstreamOk(originLeaf(pki, HOST), { alpn: 'http/1.1' });
    expect(f.last('start_client_tls').alpn).toBe('http/1.1');
  });

  test('a client without SNI is validated against the destination address and gets a leaf for that IP', async () => {
    const f = await inspectedFlow(coreOf(pki), null, { dstAddress: '127.0.0.1' });
    expect(f.last('start_upstream_tls').servername).toBeNull();
    const leaf = leafOf(f.upstreamOk(makeLeaf(pki.intermediate, { ips: ['127.0.0.1'] }).cert));
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    f.clientTlsOk();
    f.relayEnd();
    expect(f.ended).toMatchObject({ mode: 'inspect', sni: null, host: '127.0.0.1' });
  });

  test('the HTTP log gets the flow, the ALPN and the SNI; a throwing one is counted and the relay goes on without it', async () => {
    const seen: Array<[string, string | null, string | null]> = [];
    const tap = { clientToServer: () => undefined, serverToClient: () => undefined, end: () => undefined };
    const f = await inspectedFlow(coreOf(pki, { httpLogger: (flow, alpn, ctx) => (seen.push([flow.user, alpn, ctx.sni]), tap) }), HOST);
    f.upstreamOk(originLeaf(pki, HOST), { alpn: 'http/1.1' });
    f.clientTlsOk();
    expect(seen).toEqual([['alice', 'http/1.1', HOST]]);
    expect(f.last('relay').tap).toBe(tap);
    f.feed({ type: 'relay_tap_error' });
    expect(f.core.counters.values.http_logger_errors).toBe(1);

    const g = await inspectedFlow(coreOf(pki, { httpLogger: () => { throw new Error('parser bug'); } }), HOST);
    g.upstreamOk(originLeaf(pki, HOST));
    g.clientTlsOk();
    expect(g.last('relay')).toEqual({ type: 'relay', layer: 'tls', tap: null });
    expect(g.core.counters.values.http_logger_errors).toBe(1);
  });

  test('a revocation check that soft mode let through is recorded with its reason', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(originLeaf(pki, HOST), { softFails: ['revocation check skipped (soft mode): network: unreachable'] });
    expect(f.records('tls_revocation_soft_fail')).toEqual([{ type: 'tls_revocation_soft_fail', host: HOST, detail: 'revocation check skipped (soft mode): network: unreachable' }]);
    expect(f.of('start_client_tls')).toHaveLength(1);
  });

  test('a client that does not finish its handshake within the deadline is closed', async () => {
    const f = await inspectedFlow(coreOf(pki, { timeouts: { clientHandshakeMs: 300 } }), HOST);
    f.upstreamOk(originLeaf(pki, HOST));
    f.advance(300);
    expect(f.destroyed).toEqual(['client_tls', 'server_tls', 'server', 'client']);
    expect(f.ended).toMatchObject({ result: 'client_handshake_failed', clientEnd: { kind: 'other', detail: 'client did not finish the TLS handshake within 300 ms' } });
  });

  test('an upstream leaf whose names cannot be mirrored is refused with internal_error and recorded', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamOk(issueCert({ cn: '', dns: [], issuer: pki.intermediate }).cert);
    expect(f.records('tls_mint_failed')).toEqual([expect.objectContaining({ host: HOST })]);
    expect(f.last('refuse').data).toEqual(alertRecord(ALERT_INTERNAL_ERROR));
    expect(f.ended).toMatchObject({ result: 'mint_failed', undecrypted: 'upstream-cert-error:mint_failed' });
    expect(f.of('start_client_tls')).toEqual([]);
  });
});

describe('a refused upstream', () => {
  const REASONS: UpstreamError[] = ['expired', 'self_signed', 'hostname_mismatch', 'untrusted_root', 'revoked', 'revocation_unknown', 'protocol_too_old'];

  test.each(REASONS)('block mode, %s: the client gets a handshake_failure alert, both upstream sockets close, the record names the reason', async (reason) => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.upstreamFailed(reason, { detail: `why: ${reason}`, sessionOpen: true, leaf: originLeaf(pki, HOST) });
    expect(f.last('refuse').data).toEqual(alertRecord(ALERT_HANDSHAKE_FAILURE));
    expect(f.destroyed).toEqual(['server_tls', 'server']);
    expect(f.records('tls_upstream_rejected')).toEqual([expect.objectContaining({ reason, host: HOST, outcome: 'block', detail: `why: ${reason}` })]);
    expect(f.ended).toMatchObject({ result: 'upstream_rejected', reason, undecrypted: `upstream-cert-error:${reason}` });
    expect(f.of('start_client_tls')).toEqual([]);
    expect(f.core.counters.values[`upstream_rejected.${reason}`]).toBe(1);
  });

  test.each<UpstreamError>(['connect_failed', 'tls_handshake_failed', 'timeout'])('%s (no session at all) is refused with internal_error, in untrusted-ca mode too', async (reason) => {
    const f = await inspectedFlow(coreOf(pki, { tls: { onUpstreamError: 'untrusted-ca' } }), HOST);
    f.upstreamFailed(reason, { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    expect(f.last('refuse').data).toEqual(alertRecord(ALERT_INTERNAL_ERROR));
    expect(f.records('tls_upstream_rejected')).toEqual([expect.objectContaining({ reason, outcome: 'block' })]);
  });

  test.each([
    { name: 'a leaf for another host', reason: 'hostname_mismatch', leaf: (p: Pki) => originLeaf(p, 'someone-else.test'), shown: 'someone-else.test' },
    { name: 'a self-signed leaf', reason: 'self_signed', leaf: () => issueCert({ cn: HOST, dns: [HOST] }).cert, shown: HOST },
    // An expired leaf cannot be mirrored; the untrusted leaf names what the client asked for.
    { name: 'an expired leaf', reason: 'expired', leaf: (p: Pki) => originLeaf(p, HOST, { notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) }), shown: HOST },
  ] as const)('untrusted-ca mode, $name: the leaf shown is issued by the untrusted CA, never the company CA, and names $shown', async ({ reason, leaf, shown }) => {
    const f = await inspectedFlow(coreOf(pki, { tls: { onUpstreamError: 'untrusted-ca' } }), HOST);
    const shownLeaf = leafOf(f.upstreamFailed(reason, { sessionOpen: true, leaf: leaf(pki) }));
    expect(shownLeaf.checkIssued(pki.untrusted.x509)).toBe(true);
    expect(shownLeaf.checkIssued(pki.ca.x509)).toBe(false);
    expect(shownLeaf.subjectAltName).toContain(`DNS:${shown}`);
    expect(f.records('tls_upstream_rejected')).toEqual([expect.objectContaining({ reason, outcome: 'untrusted-ca' })]);
    expect(f.destroyed).toEqual([]);
  });

  test('untrusted-ca mode: a client refusing the untrusted leaf is expected, not a sign of pinning', async () => {
    const f = await inspectedFlow(coreOf(pki, { tls: { onUpstreamError: 'untrusted-ca' } }), HOST);
    f.upstreamFailed('self_signed', { sessionOpen: true, leaf: issueCert({ cn: HOST, dns: [HOST] }).cert });
    f.clientTlsFailed({ kind: 'alert', alert: 48 });
    expect(f.ended).toMatchObject({ result: 'client_refused_untrusted_leaf', clientEnd: { kind: 'alert', alert: 48 } });
    expect(f.records('tls_client_rejected')).toEqual([]);
    expect(f.core.pinning.size).toBe(0);
  });

  test('untrusted-ca mode: a user who accepts the warning reaches the origin (the browser decided, not us)', async () => {
    const f = await inspectedFlow(coreOf(pki, { tls: { onUpstreamError: 'untrusted-ca' } }), HOST);
    f.upstreamFailed('expired', { sessionOpen: true, leaf: originLeaf(pki, HOST) });
    f.clientTlsOk();
    f.feed({ type: 'relay_client_data' });
    f.relayEnd();
    expect(f.ended).toMatchObject({ mode: 'inspect', issuer: 'untrusted', result: 'closed' });
  });
});
