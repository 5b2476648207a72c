// Pinned-client detection and the verified bypass, on loopback: an app that
// trusts only its origin's own root (a pinned app) refuses our minted leaf
// with an alert; after N refusals the host is learned for that user, and the
// next connection is relayed raw, but only after the concentrator itself
// verified that the destination presents a valid certificate for the name.
// Clients that merely abort handshakes are never learned, and a learned name
// sent to another server is never a way around inspection.

import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import type * as net from 'node:net';
import { PinningTracker } from '../../../mitm/pinning';
import { BypassVerifier, tlsProbe } from '../../../mitm/bypass';
import { connectUpstream } from '../../../netstack';
import { issueCert, makeLeaf } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { EngineUnderTest, type EngineSetup, Pki, close, fixedPolicy, get, handshake, listen, makePki, originCert, subjectCN } from './engine_harness';
import { abortHandshake, clientHelloBytes, sClient } from './tls_clients';

let pki: Pki;
let genuineLeafFingerprint: string;
let genuine: https.Server;
let genuinePort: number;
const HOST = 'pinned.test';

beforeAll(async () => {
  pki = makePki();
  const cert = originCert(pki, HOST);
  genuineLeafFingerprint = cert.leaf.cert.fingerprint256;
  genuine = https.createServer(cert, (_q, s) => s.end('origin says hi'));
  genuinePort = await listen(genuine);
});
afterAll(async () => {
  await close(genuine);
  removeTempDirs();
});

/** A pinned app: trusts only the origin's test root, never the company CA, and says so with an alert. */
const pinnedApp = (port: number): ReturnType<typeof sClient> => sClient(port, HOST, pki.root.pem);

/** A policy bypass by name: relayed raw only once the destination proved the name, inspected otherwise. */
const BYPASS_BY_NAME = { action: 'bypass', reason: 'policy-bypass', verify: true, unverified: 'inspect' } as const;

async function withEngine<T>(setup: EngineSetup, originPort: number, run: (eut: EngineUnderTest) => Promise<T>, user = 'alice'): Promise<T> {
  const { policy, ...opts } = setup;
  const eut = new EngineUnderTest(pki, opts, user);
  eut.policy = policy;
  await eut.start(originPort);
  try {
    return await run(eut);
  } finally {
    await eut.stop();
  }
}

/** Three refusals by alert, each flow ended before the next. */
async function refuseThreeTimes(eut: EngineUnderTest, already = 0): Promise<void> {
  for (let i = 1; i <= 3; i++) {
    expect((await pinnedApp(eut.port)).verified).toBe(false);
    await eut.ended(already + i);
  }
}

/** The same user's ordinary traffic: inspected under the company CA, and it works. */
async function ordinaryInspectedGet(eut: EngineUnderTest): Promise<void> {
  const res = await get(eut.port, '/', { servername: HOST, ca: pki.ca.certPem });
  expect(res.body.toString()).toBe('origin says hi');
  expect(subjectCN(res.peer, 'issuer')).not.toBe('Sightline Test Intermediate');
}

describe('what is learned as pinned', () => {
  test('a client that closes, resets, or silently drops its handshakes three times is not learned (aborts are no evidence)', async () => {
    const hello = await clientHelloBytes(HOST);
    await withEngine({ pinning: { tracker: new PinningTracker({ threshold: 3 }) } }, genuinePort, async (eut) => {
      let n = 0;
      for (const how of ['close', 'reset'] as const) {
        for (let i = 0; i < 3; i++) {
          await abortHandshake(eut.port, hello, how);
          await eut.ended(++n);
        }
      }
      for (let i = 0; i < 3; i++) {
        // node:tls finishes the handshake, then closes without an alert when verification fails.
        const r = await handshake(eut.port, { servername: HOST, ca: [pki.root.pem] });
        expect(r.ok).toBe(false);
        await eut.ended(++n);
      }
      // Each abort reached our certificate: the handshake was really refused, just not with an alert.
      expect(eut.records.ofType('flow_end')).toEqual(Array(9).fill(expect.objectContaining({
        mode: 'inspect', result: 'client_handshake_failed', clientEnd: { kind: 'closed_before_finished' },
      })));
      expect(eut.records.ofType('tls_client_rejected')).toEqual([]);
      expect(eut.records.ofType('tls_pinned')).toEqual([]);
      expect(eut.engine.pinning.isPinned('alice', HOST, Date.now())).toBe(false);
      await ordinaryInspectedGet(eut);
    });
  });

  test('three unknown_ca alerts learn the host; the next connection reaches the genuine origin raw (same leaf fingerprint) after a probe verified it', async () => {
    await withEngine({ pinning: { tracker: new PinningTracker({ threshold: 3 }) } }, genuinePort, async (eut) => {
      await refuseThreeTimes(eut);
      expect(eut.records.ofType('tls_client_rejected')).toEqual([1, 2, 3].map((failures) => expect.objectContaining({ alert: 'unknown_ca', failures })));
      expect(eut.records.ofType('tls_pinned')).toEqual([expect.objectContaining({ host: HOST, failures: 3, user: 'alice', mode: 'learn', bypass: true })]);

      const r = await pinnedApp(eut.port);
      expect(r.verified).toBe(true);
      expect(r.leaf?.fingerprint256).toBe(genuineLeafFingerprint);
      await eut.ended(4);
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'pinned-learned', verified: 'probe' })]);

      // A second bypassed flow is answered from the verdict cache: one probe in all.
      expect((await pinnedApp(eut.port)).verified).toBe(true);
      await eut.ended(5);
      expect(eut.records.ofType('tls_bypass')[1]).toMatchObject({ verified: 'cache' });
      expect(eut.engine.bypass.probes).toBe(1);
    });
  });

  test('the pin is per user: another user of the same host is still inspected', async () => {
    const tracker = new PinningTracker({ threshold: 3 });
    await withEngine({ pinning: { tracker } }, genuinePort, async (alice) => {
      await refuseThreeTimes(alice);
      expect(tracker.isPinned('alice', HOST, Date.now())).toBe(true);
      await withEngine({ pinning: { tracker } }, genuinePort, (bob) => ordinaryInspectedGet(bob), 'bob');
    });
  });

  test('clients that trust the company CA never count as pinned, however often they connect', async () => {
    await withEngine({ pinning: { tracker: new PinningTracker({ threshold: 2 }) } }, genuinePort, async (eut) => {
      for (let i = 1; i <= 4; i++) {
        await ordinaryInspectedGet(eut);
        await eut.ended(i);
      }
      expect(eut.records.ofType('tls_client_rejected')).toHaveLength(0);
    });
  });
});

describe('a learned name is not a bypass for any server', () => {
  /** A server at another port that cannot prove HOST: self-signed, or a valid chain for another name. */
  const impostors: Array<{ name: string; reason: string; server: () => net.Server }> = [
    {
      name: 'a self-signed certificate for the name', reason: 'self_signed',
      server: () => {
        const c = issueCert({ cn: HOST, dns: [HOST], ips: ['127.0.0.1'] });
        return https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('impostor'));
      },
    },
    {
      name: 'a valid certificate for another name', reason: 'hostname_mismatch',
      server: () => {
        const leaf = makeLeaf(pki.intermediate, { dns: ['other.test'] });
        return https.createServer({ key: leaf.keyPem, cert: leaf.pem + pki.intermediate.pem }, (_q, s) => s.end('impostor'));
      },
    },
  ];

  test.each(impostors)('the learned SNI sent to a server with $name is inspected and refused, never relayed raw', async ({ reason, server }) => {
    const tracker = new PinningTracker({ threshold: 3 });
    await withEngine({ pinning: { tracker } }, genuinePort, async (eut) => {
      await refuseThreeTimes(eut);
      const impostor = server();
      const impostorPort = await listen(impostor);
      try {
        await withEngine({ pinning: { tracker } }, impostorPort, async (spoof) => {
          const r = await pinnedApp(spoof.port);
          expect(r.verified).toBe(false);
          expect(r.output).toMatch(/alert handshake failure/);
          await spoof.ended(1);
          expect(spoof.records.ofType('tls_bypass')).toEqual([]);
          expect(spoof.records.ofType('tls_bypass_refused')).toEqual([expect.objectContaining({ host: HOST, bypass: 'pinned-learned', reason, dst: `127.0.0.1:${impostorPort}` })]);
          expect(spoof.records.ofType('flow_end')[0]).toMatchObject({ mode: 'inspect', result: 'upstream_rejected', reason });
        });
      } finally {
        await close(impostor);
      }
      // The genuine origin is still bypassed, and the user's ordinary traffic elsewhere still works.
      expect((await pinnedApp(eut.port)).verified).toBe(true);
    });
  });

  test('with onUpstreamError untrusted-ca, the impostor is shown under the untrusted CA, not relayed', async () => {
    const tracker = new PinningTracker({ threshold: 1 });
    tracker.recordFailure('alice', HOST, Date.now());
    const c = issueCert({ cn: HOST, dns: [HOST], ips: ['127.0.0.1'] });
    const impostor = https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('impostor'));
    const port = await listen(impostor);
    try {
      await withEngine({ pinning: { tracker }, tls: { onUpstreamError: 'untrusted-ca', revocation: 'off' } }, port, async (spoof) => {
        const r = await handshake(spoof.port, { servername: HOST, ca: [pki.untrusted.certPem] });
        if (!r.ok) throw new Error(r.code);
        const leaf = new X509Certificate(r.peer.raw);
        r.socket.destroy();
        expect(leaf.checkIssued(pki.untrusted.x509)).toBe(true);
        expect(leaf.fingerprint256).not.toBe(c.cert.fingerprint256);
        await spoof.ended(1);
        expect(spoof.records.ofType('tls_bypass_refused')).toEqual([expect.objectContaining({ reason: 'self_signed' })]);
      });
    } finally {
      await close(impostor);
    }
  });

  test('a policy bypass goes through the same gate: an impostor is inspected, the genuine origin relayed', async () => {
    const c = issueCert({ cn: HOST, dns: [HOST], ips: ['127.0.0.1'] });
    const impostor = https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('impostor'));
    const port = await listen(impostor);
    try {
      await withEngine({ policy: fixedPolicy(BYPASS_BY_NAME) }, port, async (spoof) => {
        expect((await pinnedApp(spoof.port)).verified).toBe(false);
        await spoof.ended(1);
        expect(spoof.records.ofType('tls_bypass_refused')).toEqual([expect.objectContaining({ bypass: 'policy-bypass', reason: 'self_signed' })]);
      });
    } finally {
      await close(impostor);
    }
    await withEngine({ policy: fixedPolicy(BYPASS_BY_NAME) }, genuinePort, async (eut) => {
      expect((await pinnedApp(eut.port)).leaf?.fingerprint256).toBe(genuineLeafFingerprint);
      await eut.ended(1);
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ reason: 'policy-bypass', verified: 'probe' })]);
    });
  });

  test('the probe connects through the dialer the flows use', async () => {
    const dialed: string[] = [];
    const tracker = new PinningTracker({ threshold: 1 });
    tracker.recordFailure('alice', HOST, Date.now());
    const dial = (host: string, port: number, timeoutMs: number): Promise<net.Socket> => {
      dialed.push(`${host}:${port}`);
      return connectUpstream(host, port, timeoutMs);
    };
    await withEngine({ pinning: { tracker }, dial }, genuinePort, async (eut) => {
      expect((await pinnedApp(eut.port)).verified).toBe(true);
      expect(dialed).toEqual([`127.0.0.1:${genuinePort}`]);
    });
  });
});

describe('tls.pinning.mode', () => {
  test('approve: a learned host stays inspected until an admin approves it, then it is relayed to the genuine origin', async () => {
    const approved = new Set<string>();
    const approvals = { isApproved: (user: string, host: string) => approved.has(`${user} ${host}`) };
    await withEngine({ pinning: { tracker: new PinningTracker({ threshold: 3 }), mode: 'approve', approvals } }, genuinePort, async (eut) => {
      await refuseThreeTimes(eut);
      expect(eut.records.ofType('tls_pinned')).toEqual([expect.objectContaining({ mode: 'approve', bypass: false })]);
      expect((await pinnedApp(eut.port)).verified).toBe(false);
      await eut.ended(4);
      expect(eut.records.ofType('tls_bypass')).toEqual([]);

      approved.add(`alice ${HOST}`);
      const r = await pinnedApp(eut.port);
      expect(r.leaf?.fingerprint256).toBe(genuineLeafFingerprint);
      await eut.ended(5);
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ reason: 'pinned-learned' })]);
    });
  });

  test('off: rejections are logged but never learned, and approvals bypass nothing', async () => {
    const approvals = { isApproved: () => true };
    await withEngine({ pinning: { tracker: new PinningTracker({ threshold: 3 }), mode: 'off', approvals } }, genuinePort, async (eut) => {
      await refuseThreeTimes(eut);
      expect((await pinnedApp(eut.port)).verified).toBe(false);
      await eut.ended(4);
      expect(eut.records.ofType('tls_client_rejected')).toHaveLength(4);
      expect(eut.records.ofType('tls_client_rejected')[0]).toMatchObject({ alert: 'unknown_ca', learned: false });
      expect(eut.records.ofType('tls_pinned')).toEqual([]);
      expect(eut.records.ofType('tls_bypass')).toEqual([]);
      await ordinaryInspectedGet(eut);
    });
  });
});

test('a shared verifier caches per destination: the same name at another port is probed on its own', async () => {
  const bypass = new BypassVerifier({ probe: tlsProbe({ trust: pki.trust, revocation: 'off', timeoutMs: 5_000 }) });
  const other = https.createServer(originCert(pki, HOST), (_q, s) => s.end('second origin'));
  const otherPort = await listen(other);
  try {
    for (const port of [genuinePort, otherPort]) {
      await withEngine({ policy: fixedPolicy(BYPASS_BY_NAME), bypass }, port, async (eut) => {
        expect((await pinnedApp(eut.port)).verified).toBe(true);
        await eut.ended(1);
      });
    }
    expect(bypass.probes).toBe(2);
  } finally {
    await close(other);
  }
});
