// Pinned-client detection end to end: an app that trusts only its origin's
// own root (as a pinned app does) refuses our minted leaf; after N refusals
// the host is learned as pinned for that user and the next connection is
// spliced, so the app sees the ORIGIN's certificate and works again.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { join } from 'node:path';
import { PinningTracker } from '../../../mitm/pinning';
import { removeTempDirs, tempDir } from './ca_helpers';
import { EngineUnderTest, Pki, close, get, handshake, listen, makePki, originCert, sleep, subjectCN } from './engine_harness';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const HOST = 'pinned.test';

async function withOrigin<T>(run: (originPort: number) => Promise<T>): Promise<T> {
  const origin = https.createServer(originCert(pki, HOST), (_q, s) => s.end('origin says hi'));
  const port = await listen(origin);
  try {
    return await run(port);
  } finally {
    await close(origin);
  }
}

/** A client pinned to the origin's PKI: it trusts only the test root, never the company CA. */
const pinnedApp = (port: number): ReturnType<typeof handshake> => handshake(port, { servername: HOST, ca: [pki.root.pem] });

test('three refusals flip the host to pinned; the fourth connection is spliced and sees the origin certificate', async () => {
  await withOrigin(async (originPort) => {
    const eut = await new EngineUnderTest(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } }).start(originPort);
    try {
      for (let i = 1; i <= 3; i++) {
        const r = await pinnedApp(eut.port);
        expect(r.ok).toBe(false);
        await eut.ended(i);
      }
      expect(eut.records.ofType('tls_client_rejected').map((r) => r.failures)).toEqual([1, 2, 3]);
      const pinned = eut.records.ofType('tls_pinned');
      expect(pinned).toHaveLength(1);
      expect(pinned[0]).toMatchObject({ host: HOST, failures: 3, user: 'alice' });

      const r = await pinnedApp(eut.port);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(subjectCN(r.peer, 'issuer')).toBe('Sightline Test Intermediate');
      r.socket.destroy();
      await eut.ended(4);
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'pinned' })]);
      expect(eut.records.ofType('tls_pinned')).toHaveLength(1);
    } finally {
      await eut.stop();
    }
  });
});

test('the pin is per user: another user of the same host is still inspected', async () => {
  await withOrigin(async (originPort) => {
    const tracker = new PinningTracker({ threshold: 2 });
    const alice = await new EngineUnderTest(pki, { pinning: { tracker } }, 'alice').start(originPort);
    const bob = await new EngineUnderTest(pki, { pinning: { tracker } }, 'bob').start(originPort);
    try {
      for (let i = 1; i <= 2; i++) {
        await pinnedApp(alice.port);
        await alice.ended(i);
      }
      expect(tracker.isPinned('alice', HOST, Date.now())).toBe(true);
      const res = await get(bob.port, '/', { servername: HOST, ca: pki.ca.certPem });
      expect(res.body.toString()).toBe('origin says hi');
      expect(subjectCN(res.peer, 'issuer')).not.toBe('Sightline Test Intermediate');
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });
});

test('with bypass not allowed, a pinned host is still inspected (and still refused by the app)', async () => {
  await withOrigin(async (originPort) => {
    const eut = await new EngineUnderTest(pki, { pinning: { tracker: new PinningTracker({ threshold: 2 }), allowBypass: false } }).start(originPort);
    try {
      for (let i = 1; i <= 3; i++) {
        expect((await pinnedApp(eut.port)).ok).toBe(false);
        await eut.ended(i);
      }
      expect(eut.records.ofType('tls_pinned')).toEqual([expect.objectContaining({ bypass: false })]);
      expect(eut.records.ofType('tls_bypass')).toHaveLength(0);
    } finally {
      await eut.stop();
    }
  });
});

test('clients that trust the company CA never count as pinned, however often they connect', async () => {
  await withOrigin(async (originPort) => {
    const eut = await new EngineUnderTest(pki, { pinning: { tracker: new PinningTracker({ threshold: 2 }) } }).start(originPort);
    try {
      for (let i = 1; i <= 4; i++) {
        await get(eut.port, '/', { servername: HOST, ca: pki.ca.certPem });
        await eut.ended(i);
      }
      expect(eut.records.ofType('tls_client_rejected')).toHaveLength(0);
    } finally {
      await eut.stop();
    }
  });
});

test('an idle connection closed long after the handshake is not mistaken for a refusal', async () => {
  await withOrigin(async (originPort) => {
    const eut = await new EngineUnderTest(pki, { pinning: { tracker: new PinningTracker({ threshold: 1 }), silentCloseMs: 100 } }).start(originPort);
    try {
      const r = await handshake(eut.port, { servername: HOST, ca: [pki.ca.certPem] });
      if (!r.ok) throw new Error(r.code);
      await sleep(400);
      r.socket.destroy();
      await eut.ended(1);
      expect(eut.records.ofType('tls_client_rejected')).toHaveLength(0);
    } finally {
      await eut.stop();
    }
  });
});

test('a client that sends a fatal unknown_ca alert during the handshake counts as a refusal (openssl s_client)', async () => {
  await withOrigin(async (originPort) => {
    const eut = await new EngineUnderTest(pki, { pinning: { tracker: new PinningTracker({ threshold: 3 }) } }).start(originPort);
    try {
      const dir = tempDir('sightline-sclient-');
      writeFileSync(join(dir, 'root.pem'), pki.root.pem);
      // -verify_return_error makes OpenSSL abort the handshake with an alert (RFC 8446 §6.2) instead of continuing.
      await runSClient(['s_client', '-connect', `127.0.0.1:${eut.port}`, '-servername', HOST, '-CAfile', join(dir, 'root.pem'), '-verify_return_error'], dir);
      await eut.ended(1);
      expect(eut.records.ofType('tls_client_rejected')).toEqual([expect.objectContaining({ how: 'alert', failures: 1 })]);
    } finally {
      await eut.stop();
    }
  });
});

function runSClient(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('openssl', args, { cwd, stdio: ['pipe', 'ignore', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGTERM'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
