// Pinned-client detection and the verified bypass in the engine's core: an
// app that trusts only its origin's own root (a pinned app) refuses our
// minted leaf with an alert; after N refusals the host is learned for that
// user, and the next flow is relayed raw, but only after the destination
// proved the name. Clients that merely abort handshakes are never learned,
// and a learned name sent to another server is never a way around
// inspection.

import { X509Certificate } from 'node:crypto';
import type { InspectionCore } from '../../../../mitm/engine';
import { ALERT_HANDSHAKE_FAILURE, alertRecord } from '../../../../mitm/alerts';
import { PinningTracker } from '../../../../mitm/pinning';
import { issueCert } from '../../../helpers/pki';
import { removeTempDirs } from '../ca_helpers';
import { FlowUnderTest, ORIGIN, type Pki, coreOf, helloBytes, makePki, originLeaf } from './machine';

let pki: Pki;
let hello: Buffer;
const HOST = 'pinned.test';
const UNKNOWN_CA = 48;

beforeAll(async () => {
  pki = makePki();
  hello = await helloBytes(HOST);
});
afterAll(removeTempDirs);

const GENUINE = { ok: true, notAfter: Date.now() + 86_400_000 } as const;

function flow(core: InspectionCore, over: ConstructorParameters<typeof FlowUnderTest>[1] = {}): FlowUnderTest {
  const f = new FlowUnderTest(core, over);
  f.client(hello);
  return f;
}

/** An inspected flow whose client refuses our leaf as `end` says. */
function refused(core: InspectionCore, end: Parameters<FlowUnderTest['clientTlsFailed']>[0], user = 'alice'): FlowUnderTest {
  const f = flow(core, { user });
  f.upstreamOk(originLeaf(pki, HOST));
  f.clientTlsFailed(end);
  return f;
}

/** Three refusals by alert. */
function refuseThreeTimes(core: InspectionCore, user = 'alice'): FlowUnderTest[] {
  return [1, 2, 3].map(() => refused(core, { kind: 'alert', alert: UNKNOWN_CA }, user));
}

describe('what is learned as pinned', () => {
  test('a client that closes, resets, or silently drops its handshakes is not learned (aborts are no evidence)', () => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    const flows = [...Array(9)].map(() => refused(core, { kind: 'closed_before_finished' }));
    for (const f of flows) {
      expect(f.ended).toMatchObject({ mode: 'inspect', result: 'client_handshake_failed', clientEnd: { kind: 'closed_before_finished' }, undecrypted: 'protocol-error' });
      expect(f.records('tls_client_rejected')).toEqual([]);
    }
    expect(core.pinning.isPinned('alice', HOST, flows[8].now)).toBe(false);
    expect(flow(core).of('start_upstream_tls')).toHaveLength(1);
  });

  test('three unknown_ca alerts learn the host; the next flow is relayed raw after a probe proved the name, the one after from the cache', () => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    const flows = refuseThreeTimes(core);
    expect(flows.flatMap((f) => f.records('tls_client_rejected'))).toEqual([1, 2, 3].map((failures) => expect.objectContaining({ alert: 'unknown_ca', failures, host: HOST })));
    expect(flows[2].records('tls_pinned')).toEqual([expect.objectContaining({ host: HOST, failures: 3, mode: 'learn', bypass: true })]);
    for (const f of flows) expect(f.destroyed).toEqual(['client_tls', 'server_tls', 'server', 'client']);

    const next = flow(core);
    expect(next.last('probe').target).toEqual({ address: ORIGIN, port: 443, name: HOST, alpn: [] });
    next.feed({ type: 'probe_done', result: GENUINE });
    expect(next.of('write')).toEqual([{ type: 'write', side: 'server', data: hello }]);
    expect(next.last('relay').layer).toBe('raw');
    expect(next.records('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'pinned-learned', verified: 'probe' })]);

    const third = flow(core);
    expect(third.of('probe')).toEqual([]);
    expect(third.records('tls_bypass')).toEqual([expect.objectContaining({ verified: 'cache' })]);
  });

  test('the pin is per user: another user of the same host is still inspected', () => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    refuseThreeTimes(core);
    expect(flow(core, { user: 'bob' }).of('start_upstream_tls')).toHaveLength(1);
  });

  test('clients that use our certificate never count as pinned: a flow that carried data forgets earlier refusals', () => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    refused(core, { kind: 'alert', alert: UNKNOWN_CA });
    refused(core, { kind: 'alert', alert: UNKNOWN_CA });
    const ok = flow(core);
    ok.upstreamOk(originLeaf(pki, HOST));
    ok.clientTlsOk();
    ok.feed({ type: 'relay_client_data' });
    ok.relayEnd();
    expect(refused(core, { kind: 'alert', alert: UNKNOWN_CA }).records('tls_client_rejected')).toEqual([expect.objectContaining({ failures: 1 })]);
  });
});

describe('a learned name is not a bypass for any server', () => {
  test.each(['self_signed', 'hostname_mismatch'] as const)('the learned SNI sent to a server that cannot prove it (%s) is inspected and refused, never relayed raw', (reason) => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } });
    refuseThreeTimes(core);
    const spoof = flow(core, { dstAddress: '198.51.100.66' });
    spoof.feed({ type: 'probe_done', result: { ok: false, reason, detail: reason } });
    expect(spoof.records('tls_bypass')).toEqual([]);
    expect(spoof.records('tls_bypass_refused')).toEqual([expect.objectContaining({ host: HOST, bypass: 'pinned-learned', reason, dst: '198.51.100.66:443' })]);
    spoof.upstreamFailed(reason, { sessionOpen: true });
    expect(spoof.last('refuse').data).toEqual(alertRecord(ALERT_HANDSHAKE_FAILURE));
    expect(spoof.ended).toMatchObject({ mode: 'inspect', result: 'upstream_rejected', reason });
    expect(spoof.of('relay')).toEqual([]);
    // The genuine origin is still bypassed: the verdict is per destination.
    const genuine = flow(core);
    genuine.feed({ type: 'probe_done', result: GENUINE });
    expect(genuine.last('relay').layer).toBe('raw');
  });

  test('with onUpstreamError untrusted-ca, the impostor is shown under the untrusted CA, not relayed', () => {
    const tracker = new PinningTracker({ threshold: 1 });
    const core = coreOf(pki, { pinning: { tracker }, tls: { onUpstreamError: 'untrusted-ca' } });
    tracker.recordFailure('alice', HOST, Date.now());
    const spoof = flow(core);
    spoof.feed({ type: 'probe_done', result: { ok: false, reason: 'self_signed', detail: 'self-signed' } });
    const impostor = issueCert({ cn: HOST, dns: [HOST] }).cert;
    spoof.upstreamFailed('self_signed', { sessionOpen: true, leaf: impostor });
    const shown = spoof.last('start_client_tls').leaf;
    expect(new X509Certificate(shown.certDer).checkIssued(pki.untrusted.x509)).toBe(true);
    expect(spoof.records('tls_bypass_refused')).toEqual([expect.objectContaining({ reason: 'self_signed' })]);
    expect(spoof.of('relay')).toEqual([]);
  });
});

describe('tls.pinning.mode', () => {
  test('approve: a learned host stays inspected until an admin approves it, then it is relayed once the destination proved it', () => {
    const approved = new Set<string>();
    const approvals = { isApproved: (user: string, host: string) => approved.has(`${user} ${host}`) };
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }), mode: 'approve', approvals } });
    const flows = refuseThreeTimes(core);
    expect(flows[2].records('tls_pinned')).toEqual([expect.objectContaining({ mode: 'approve', bypass: false })]);
    expect(flow(core).of('start_upstream_tls')).toHaveLength(1);
    approved.add(`alice ${HOST}`);
    const next = flow(core);
    next.feed({ type: 'probe_done', result: GENUINE });
    expect(next.records('tls_bypass')).toEqual([expect.objectContaining({ reason: 'pinned-learned' })]);
  });

  test('off: rejections are logged but never learned, and approvals bypass nothing', () => {
    const core = coreOf(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }), mode: 'off', approvals: { isApproved: () => true } } });
    const flows = [...refuseThreeTimes(core), refused(core, { kind: 'alert', alert: UNKNOWN_CA })];
    const rejected = flows.flatMap((f) => f.records('tls_client_rejected'));
    expect(rejected).toHaveLength(4);
    expect(rejected[0]).toMatchObject({ alert: 'unknown_ca', learned: false });
    expect(flows.flatMap((f) => f.records('tls_pinned'))).toEqual([]);
    expect(flow(core).of('start_upstream_tls')).toHaveLength(1);
  });
});
