// The client side's TLS contexts: made ahead with the minter's shared key,
// given a leaf's certificate on first use, one per leaf, and sharing session
// tickets, so a client resumes its session (without a certificate or a
// signature) also once its leaf was minted again. Handshakes run over
// in-memory connections.

import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { LeafContexts } from '../../../mitm/leaf_contexts';
import { DEFAULT_LEAF_VALIDITY_MS, LeafMinter } from '../../../mitm/mint';
import { removeTempDirs } from './ca_helpers';
import { type Pki, makePki } from './engine/machine';
import { duplexPair, turn } from './memory_streams';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const names = (host: string): { sans: Array<{ type: 'dns'; value: string }> } => ({ sans: [{ type: 'dns', value: host }] });

/** A client handshake against `context`: the leaf it saw, and whether its session was resumed. */
function connect(context: tls.SecureContext, servername: string, session?: Buffer): Promise<{ leaf: X509Certificate | undefined; reused: boolean; session: Buffer | undefined }> {
  const [a, b] = duplexPair();
  const server = new tls.TLSSocket(b, { isServer: true, secureContext: context });
  server.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    let got: Buffer | undefined;
    const client = tls.connect({ socket: a, servername, ca: [pki.ca.certPem], session });
    client.on('session', (s: Buffer) => (got = s));
    client.once('secureConnect', () => {
      const leaf = client.getPeerX509Certificate();
      const reused = client.isSessionReused();
      // TLS 1.3 tickets arrive after the handshake.
      turnsThen(() => {
        client.end();
        resolve({ leaf, reused, session: got });
      }).catch(reject);
    });
    client.once('error', reject);
  });
}

async function turnsThen(fn: () => void): Promise<void> {
  for (let i = 0; i < 20; i++) await turn();
  fn();
}

test('a leaf\'s context presents that leaf, and the same leaf gets the same context', async () => {
  const minter = new LeafMinter(pki.ca);
  const contexts = new LeafContexts();
  contexts.prepare(minter.keyPem);
  await turn();
  const leaf = minter.mint(names('a.test'), { now: Date.now() });
  const ctx = contexts.for(leaf);
  expect(contexts.for(leaf)).toBe(ctx);
  const seen = await connect(ctx, 'a.test');
  expect(seen.leaf?.fingerprint256).toBe(new X509Certificate(leaf.certDer).fingerprint256);
  expect(seen.leaf?.checkIssued(pki.ca.x509)).toBe(true);
});

test('leaves of different hosts get contexts of their own, prepared or not', async () => {
  const minter = new LeafMinter(pki.ca);
  const contexts = new LeafContexts(2);
  const leaves = ['a.test', 'b.test', 'c.test', 'd.test'].map((h) => minter.mint(names(h), { now: Date.now() }));
  const ctxs = leaves.map((l) => contexts.for(l));
  expect(new Set(ctxs).size).toBe(4);
  for (const [i, h] of ['a.test', 'b.test', 'c.test', 'd.test'].entries()) {
    expect((await connect(ctxs[i], h)).leaf?.checkHost(h)).toBe(h);
  }
});

test('a client resumes its session with a context made for its leaf minted again (shared session tickets)', async () => {
  const minter = new LeafMinter(pki.ca);
  const contexts = new LeafContexts();
  const t0 = Date.now();
  const first = minter.mint(names('resume.test'), { now: t0 });
  const { session } = await connect(contexts.for(first), 'resume.test');
  expect(session).toBeDefined();
  // Close to its notAfter a cached leaf is minted again: a new leaf, a new context.
  const again = minter.mint(names('resume.test'), { now: t0 + DEFAULT_LEAF_VALIDITY_MS - 30 * 60_000 });
  expect(again).not.toBe(first);
  expect(contexts.for(again)).not.toBe(contexts.for(first));
  expect((await connect(contexts.for(again), 'resume.test', session)).reused).toBe(true);
});
