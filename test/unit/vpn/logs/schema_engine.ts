// The inspection engine's records for the log-schema test, written through
// the real engine against loopback origins, each flow governed by the real
// policy hook (vpn/flow_policy, as the concentrator's TcpPolicy builds it),
// so every record carries the deciding rule and action, and every flow that
// ends undecrypted writes its `policy` record with the reason.
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { LeafMinter } from '../../../../mitm/mint';
import { PinningTracker } from '../../../../mitm/pinning';
import type { FlowPolicyHook, InspectedFlow } from '../../../../mitm';
import { IpAddress } from '../../../../netstack/wire';
import { tlsHook, type FlowPolicy } from '../../../../vpn/flow_policy';
import type { EgressBoundary } from '../../../../vpn/egress';
import { httpRecords } from '../../../../vpn/inspection';
import type { UserLog } from '../../../../vpn/logs';
import { makeLeaf, makeRoot } from '../../../helpers/pki';
import { get, handshake, originCert, withEngine, type EngineSetup, type Pki } from '../../mitm/engine_harness';
import { sClient } from '../../mitm/tls_clients';

export interface EngineRecordsContext {
  pki: Pki;
  userLog: UserLog;
  /** Decides the flows (rules in schema.test.ts: blocked.test blocked, the test-banks category bypassed, the rest inspected). */
  policy: FlowPolicy;
  /** The egress guard's fetchers: an OCSP fetch to loopback is refused into the user's log (path fetch). */
  egress: EgressBoundary;
}

/** The policy hook for one flow, as TcpPolicy.inspectedFlow gives it: the verdict at the SYN, named once the ClientHello is read. */
function governedBy(fp: FlowPolicy): (flow: InspectedFlow) => FlowPolicyHook {
  return (flow) => {
    const opened = fp.openTcp({ id: flow.peer, user: flow.user }, IpAddress.parse(flow.dstAddress), flow.dstPort);
    flow.rule = opened.verdict.rule;
    flow.action = opened.verdict.action;
    return tlsHook(fp, opened, flow);
  };
}

export async function engineRecords(ctx: EngineRecordsContext): Promise<void> {
  const { pki } = ctx;
  const scenario = async (origin: net.Server, setup: EngineSetup, run: (port: number) => Promise<unknown>, flows = 1): Promise<void> => {
    await withEngine(pki, origin, async (eut) => {
      await run(eut.port);
      await eut.ended(flows);
    }, {
      policy: governedBy(ctx.policy),
      fetchFor: (flow) => ctx.egress.fetcherFor(flow.user, flow.peer),
      ...setup,
      records: ctx.userLog,
    });
  };
  const origin = (host: string, opts: https.ServerOptions = {}): https.Server => https.createServer({ ...originCert(pki, host), ...opts }, (_q, s) => s.end('ok'));
  const companyCa = [pki.ca.certPem];

  // Inspected request: http + flow_end.
  await scenario(origin('good.test'), { httpLogger: httpRecords(ctx.userLog) }, (port) => get(port, '/a?q=1', { servername: 'good.test', ca: pki.ca.certPem }));
  // A rule by name blocks: tls_blocked, policy (policy-block).
  await scenario(origin('blocked.test'), {}, (port) => handshake(port, { servername: 'blocked.test', ca: companyCa }));
  // A category bypass, once the destination proved the name: tls_bypass (category, probe), policy (category).
  await scenario(origin('bank.test'), {}, (port) => get(port, '/', { servername: 'bank.test', ca: pki.root.pem }));
  // A leaf from an unknown root, sent alone: tls_upstream_rejected (incomplete_chain, outcome block), policy (upstream-cert-error:incomplete_chain).
  const self = makeLeaf(makeRoot({ cn: 'Nobody' }), { dns: ['bad.test'] });
  const selfSigned = (): https.Server => https.createServer({ key: self.keyPem, cert: self.pem });
  await scenario(selfSigned(), {}, (port) => handshake(port, { servername: 'bad.test', ca: companyCa }));
  // The same under tls.onUpstreamError untrusted-ca, and a device that does not click through: outcome untrusted-ca, clientEnd.
  await scenario(selfSigned(), { tls: { onUpstreamError: 'untrusted-ca', revocation: 'off' } }, (port) => handshake(port, { servername: 'bad.test', ca: companyCa }));
  // Not TLS on an inspected port: non_tls, policy (non-tls).
  await scenario(net.createServer((s) => s.destroy()), {}, (port) => plainHttp(port));
  // A device that closes before any ClientHello: flow_end client_hello_failed (protocol-error).
  await scenario(net.createServer(() => undefined), {}, (port) => closeAtOnce(port));
  // A pinned app refuses our leaf (tls_client_rejected, tls_pinned), then is bypassed (tls_bypass pinned-learned).
  const tracker = new PinningTracker({ threshold: 1 });
  await scenario(origin('good.test'), { pinning: { tracker } }, async (port) => {
    await sClient(port, 'good.test', pki.root.pem);
    await new Promise((r) => setTimeout(r, 200));
    await sClient(port, 'good.test', pki.root.pem);
  }, 2);
  // The same refusal with tls.pinning.mode off: tls_client_rejected, nothing learned.
  await scenario(origin('good.test'), { pinning: { tracker: new PinningTracker({ threshold: 1 }), mode: 'off' } }, (port) => sClient(port, 'good.test', pki.root.pem));
  // An approved bypass to a server that cannot prove the name: tls_bypass_refused (then tls_upstream_rejected).
  await scenario(origin('good.test'), { pinning: { mode: 'approve', approvals: { isApproved: () => true } } }, (port) =>
    handshake(port, { servername: 'other.test', ca: companyCa }));
  // An OCSP responder on loopback: the egress guard refuses the fetch (egress_denied, path fetch), so tls.revocation soft lets it pass (tls_revocation_soft_fail).
  const orphan = makeLeaf(pki.intermediate, { dns: ['orphan.test'], ocspUrl: 'http://127.0.0.1:9/' });
  await scenario(https.createServer({ key: orphan.keyPem, cert: orphan.pem + pki.intermediate.pem }, (_q, s) => s.end('ok')), { tls: { revocation: 'soft' } },
    (port) => get(port, '/', { servername: 'orphan.test', ca: pki.ca.certPem }));
  // The leaf cannot be made: tls_mint_failed.
  const failing = Object.assign(Object.create(LeafMinter.prototype) as LeafMinter, { mint: () => { throw new Error('minting disabled for the test'); } });
  await scenario(origin('good.test'), { minter: failing }, (port) => handshake(port, { servername: 'good.test', ca: companyCa }));
  // A server demanding a client certificate: tls_mtls_learned, policy (mtls).
  const mtls = origin('mtls.test', { requestCert: true, rejectUnauthorized: true, ca: [pki.root.pem], maxVersion: 'TLSv1.3' as tls.SecureVersion });
  await scenario(mtls, {}, (port) => get(port, '/', { servername: 'mtls.test', ca: pki.ca.certPem }).catch(() => undefined));
}

function plainHttp(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

function closeAtOnce(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end());
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}
