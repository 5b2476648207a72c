// The engine's core under a flow's policy hook: what each decision does to
// the flow, the reason a flow that is not decrypted carries, and the
// verified-bypass gate every name-based bypass goes through (a name the
// client wrote is proven by the destination before a flow is relayed raw).

import type { FlowPolicyHook } from '../../../../mitm/flow_policy';
import { ALERT_ACCESS_DENIED, alertRecord } from '../../../../mitm/alerts';
import { BypassVerifier } from '../../../../mitm/bypass';
import { removeTempDirs } from '../ca_helpers';
import { FlowUnderTest, ORIGIN, type Pki, coreOf, fixedPolicy, helloBytes, inspectedFlow, makePki, originLeaf } from './machine';

let pki: Pki;
let hello: Buffer;
const HOST = 'site.test';
beforeAll(async () => {
  pki = makePki();
  hello = await helloBytes(HOST, { ALPNProtocols: ['h2'] });
});
afterAll(removeTempDirs);

/** A policy bypass by name: relayed raw only once the destination proved the name, inspected otherwise. */
const BYPASS_BY_NAME = { action: 'bypass', reason: 'policy-bypass', verify: true, unverified: 'inspect' } as const;

function withPolicy(policy: FlowPolicyHook, core = coreOf(pki)): FlowUnderTest {
  const f = new FlowUnderTest(core, { policy });
  f.client(hello);
  return f;
}

describe('decisions', () => {
  test('a block refuses with an access_denied alert; the upstream is closed and never spoken to in TLS', () => {
    const f = withPolicy(fixedPolicy({ action: 'block' }));
    expect(f.of('start_upstream_tls')).toEqual([]);
    expect(f.destroyed).toEqual(['server']);
    expect(f.last('refuse')).toEqual({ type: 'refuse', data: alertRecord(ALERT_ACCESS_DENIED), lingerMs: 1_000 });
    expect(f.records('tls_blocked')).toEqual([expect.objectContaining({ host: HOST, reason: 'policy' })]);
    expect(f.ended).toMatchObject({ result: 'blocked_by_policy', mode: 'refused' });
  });

  test('a bypass by a rule without names is relayed raw without a probe, the ClientHello first', () => {
    const policy = fixedPolicy({ action: 'bypass', reason: 'policy-bypass', verify: false, unverified: 'inspect' });
    const f = withPolicy(policy);
    expect(f.of('probe')).toEqual([]);
    expect(f.of('write')).toEqual([{ type: 'write', side: 'server', data: hello }]);
    expect(f.last('relay')).toEqual({ type: 'relay', layer: 'raw', tap: null });
    expect(f.records('tls_bypass')).toEqual([expect.objectContaining({ reason: 'policy-bypass', verified: 'none' })]);
    f.relayEnd({ fromClient: 10, fromServer: 20 });
    expect(f.ended).toMatchObject({ mode: 'bypass', undecrypted: 'policy-bypass', bytesFromClient: 10 + hello.length, bytesFromServer: 20 });
    expect(f.last('undecrypted')).toEqual({ type: 'undecrypted', reason: 'policy-bypass', sni: HOST });
  });

  test('a bypass by name asks the destination to prove the name (same address, port, name and ALPN) before anything is relayed', () => {
    const f = withPolicy(fixedPolicy(BYPASS_BY_NAME));
    expect(f.last('probe')).toEqual({ type: 'probe', target: { address: ORIGIN, port: 443, name: HOST, alpn: ['h2'] } });
    expect(f.of('write')).toEqual([]);
    f.feed({ type: 'probe_done', result: { ok: true, notAfter: f.now + 3_600_000 } });
    expect(f.records('tls_bypass')).toEqual([expect.objectContaining({ reason: 'policy-bypass', verified: 'probe' })]);
    expect(f.last('relay').layer).toBe('raw');
    expect(f.core.counters.values['bypass.verified']).toBe(1);
  });

  test('a proven name is answered from the cache for the next flow to the same destination: no second probe', () => {
    const core = coreOf(pki);
    const first = withPolicy(fixedPolicy(BYPASS_BY_NAME), core);
    first.feed({ type: 'probe_done', result: { ok: true, notAfter: first.now + 3_600_000 } });
    const second = withPolicy(fixedPolicy(BYPASS_BY_NAME), core);
    expect(second.of('probe')).toEqual([]);
    expect(second.records('tls_bypass')).toEqual([expect.objectContaining({ verified: 'cache' })]);
  });

  test('the same name at another port is proven on its own (a shared verdict cache is per destination)', () => {
    const bypass = new BypassVerifier();
    const a = new FlowUnderTest(coreOf(pki, { bypass }), { policy: fixedPolicy(BYPASS_BY_NAME) });
    a.client(hello);
    a.feed({ type: 'probe_done', result: { ok: true, notAfter: a.now + 3_600_000 } });
    const b = new FlowUnderTest(coreOf(pki, { bypass }), { policy: fixedPolicy(BYPASS_BY_NAME), dstPort: 8443 });
    b.client(hello);
    expect(b.last('probe').target.port).toBe(8443);
  });

  test('a bypass by name toward a server that cannot prove the name is inspected instead; nothing of the client reached it raw', () => {
    const f = withPolicy(fixedPolicy(BYPASS_BY_NAME));
    f.feed({ type: 'probe_done', result: { ok: false, reason: 'self_signed', detail: 'self-signed' } });
    expect(f.records('tls_bypass_refused')).toEqual([expect.objectContaining({ host: HOST, bypass: 'policy-bypass', reason: 'self_signed', dst: `${ORIGIN}:443` })]);
    expect(f.last('start_upstream_tls')).toEqual({ type: 'start_upstream_tls', servername: HOST, alpn: ['h2'] });
    expect(f.of('write')).toEqual([]);
    expect(f.of('relay')).toEqual([]);
    expect(f.core.counters.values['bypass_refused.self_signed']).toBe(1);
  });

  test('a bypass by name toward a server that cannot prove the name is blocked when the flow would be blocked without the name', () => {
    const policy = fixedPolicy({ action: 'bypass', reason: 'category', verify: true, unverified: 'block' });
    const f = withPolicy(policy);
    f.feed({ type: 'probe_done', result: { ok: false, reason: 'self_signed', detail: 'self-signed' } });
    expect(f.last('refuse').data).toEqual(alertRecord(ALERT_ACCESS_DENIED));
    expect(f.ended).toMatchObject({ result: 'blocked_by_policy', undecrypted: 'upstream-cert-error:self_signed' });
    expect(f.records('tls_bypass_refused')).toEqual([expect.objectContaining({ bypass: 'category', reason: 'self_signed' })]);
    expect(f.of('start_upstream_tls')).toEqual([]);
    expect(f.of('write')).toEqual([]);
    expect(f.last('undecrypted')).toEqual({ type: 'undecrypted', reason: 'upstream-cert-error:self_signed', sni: HOST });
  });

  test('every record of a flow carries the rule and action its hook decided', async () => {
    const f = new FlowUnderTest(coreOf(pki));
    const policy: FlowPolicyHook = {
      tls: () => {
        f.machine.run.flow.rule = 'inspect-tls';
        f.machine.run.flow.action = 'inspect';
        return { action: 'inspect' };
      },
      nonTls: () => 'nonTls',
    };
    f.machine.run.flow.policy = policy;
    f.client(await helloBytes(HOST));
    f.upstreamOk(originLeaf(pki, HOST), { softFails: ['responder unreachable'] });
    f.clientTlsOk();
    f.relayEnd();
    expect(f.records().map((r) => r.type)).toEqual(['tls_revocation_soft_fail', 'flow_end']);
    for (const r of f.records()) expect(r).toMatchObject({ rule: 'inspect-tls', action: 'inspect' });
  });

  test('a hook that throws ends the flow as internal_error, both sides closed', () => {
    const f = withPolicy({ tls: () => { throw new Error('hook bug'); }, nonTls: () => 'nonTls' });
    expect(f.destroyed).toEqual(['client', 'server']);
    expect(f.ended).toMatchObject({ result: 'internal_error', detail: 'hook bug' });
    expect(f.core.counters.values.internal_errors).toBe(1);
  });

  test('a command the adapter could not carry out ends the flow as internal_error', async () => {
    const f = await inspectedFlow(coreOf(pki), HOST);
    f.feed({ type: 'fault', detail: 'boom' });
    expect(f.ended).toMatchObject({ result: 'internal_error', detail: 'boom' });
  });
});

describe('traffic that is not TLS under policy', () => {
  const request = Buffer.from('GET / HTTP/1.1\r\nhost: site.test\r\n\r\n');

  test('an allow relays it although tls.nonTls blocks, and the reason is non-tls', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'block' }), { policy: fixedPolicy({ action: 'inspect' }, 'allow') });
    f.client(request);
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'http', outcome: 'allow' })]);
    expect(f.of('write')).toEqual([{ type: 'write', side: 'server', data: request }]);
    f.relayEnd();
    expect(f.last('undecrypted')).toMatchObject({ reason: 'non-tls' });
  });

  test('a block refuses it although tls.nonTls allows', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow' }), { policy: fixedPolicy({ action: 'inspect' }, 'block') });
    f.client(request);
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ outcome: 'block' })]);
    expect(f.of('relay')).toEqual([]);
    expect(f.destroyed).toEqual(['client', 'server']);
  });
});
