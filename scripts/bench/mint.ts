// Leaf minting cost: a first visit to a host may add at most 1 ms (DESIGN.md).
// Cold mints use distinct hosts so every one builds and signs a certificate;
// warm hits repeat them. Anchors: the signature alone (the floor), and an
// RSA-3072 CA (why ECDSA P-256 is the default). The first visit's CPU is the
// mint plus the client side's TLS context for the leaf: from a pool with the
// leaf key loaded (leaf_contexts.ts), beside the context built from scratch
// with the key exported to PEM, as it was before the pool.

import { X509Certificate, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadedCa, initCa, loadCa } from '../../mitm/ca';
import * as tls from 'node:tls';
import { DEFAULT_PREPARED_CONTEXTS, LeafContexts, type NativeContext, REFILL_INTERVAL_MS } from '../../mitm/leaf_contexts';
import { LeafMinter, UpstreamNames } from '../../mitm/mint';
import type { BenchRow } from './table';

const COLD_HOSTS = 2000;
/** First visits with a prepared context each; the pool fills one context per REFILL_INTERVAL_MS. */
const CONTEXT_HOSTS = 100;
const CONTEXT_WARMUP = 5;
const RSA_CA_HOSTS = 200;
/** Enough mints for V8 to optimise the hot path before anything is timed. */
const WARMUP = 1000;

const hostNames = (i: number, tag: string): UpstreamNames => ({
  subjectCN: `www.${tag}${i}.example.com`,
  sans: [
    { type: 'dns', value: `www.${tag}${i}.example.com` },
    { type: 'dns', value: `${tag}${i}.example.com` },
    { type: 'dns', value: `*.static.${tag}${i}.example.com` },
  ],
});

function timeEach(n: number, op: (i: number) => void): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    op(i);
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];

function freshCa(keyType: 'ecdsa-p256' | 'rsa-3072'): { ca: LoadedCa; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sightline-bench-ca-'));
  initCa(dir, { keyType });
  return { ca: loadCa(dir), dir };
}

export async function benchMint(): Promise<BenchRow[]> {
  // The bench's wall clock, read once: every leaf is minted as of now.
  const now = Date.now();
  const p256 = freshCa('ecdsa-p256');
  const rsa = freshCa('rsa-3072');
  try {
    const minter = new LeafMinter(p256.ca, { cacheSize: COLD_HOSTS * 2 });
    timeEach(WARMUP, (i) => minter.mint(hostNames(i, 'warmup'), { now }));

    const cold = timeEach(COLD_HOSTS, (i) => minter.mint(hostNames(i, 'cold'), { now }));
    const warm = timeEach(COLD_HOSTS, (i) => minter.mint(hostNames(i, 'cold'), { now }));

    // Minting from the upstream's certificate object adds parsing its names.
    const upstreamCerts = Array.from({ length: COLD_HOSTS }, (_, i) =>
      new X509Certificate(minter.mint(hostNames(i, 'source'), { now }).certDer));
    const fromCert = new LeafMinter(p256.ca, { cacheSize: COLD_HOSTS * 2 });
    timeEach(WARMUP, (i) => fromCert.mint(hostNames(i, 'fromcert-warmup'), { now }));
    const coldFromCert = timeEach(COLD_HOSTS, (i) => fromCert.mint(upstreamCerts[i], { now }));

    const tbsSized = Buffer.alloc(450, 1);
    const signOnly = timeEach(COLD_HOSTS, () => sign('sha256', tbsSized, p256.ca.key));

    // A first visit's CPU: the mint plus the client side's TLS context for the leaf.
    const scratch = timeEach(CONTEXT_HOSTS, (i) => {
      const leaf = minter.mint(hostNames(i, 'scratch'), { now });
      tls.createSecureContext({ key: leaf.key.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: leaf.chainPem, minVersion: 'TLSv1.2' });
    });
    const contexts = new LeafContexts(CONTEXT_HOSTS + CONTEXT_WARMUP);
    contexts.prepare(minter.keyPem);
    await new Promise((resolve) => setTimeout(resolve, (CONTEXT_HOSTS + CONTEXT_WARMUP + 2) * REFILL_INTERVAL_MS * 1.5));
    // After the idle wait V8 recompiles what it flushed: that is not the pool's cost.
    timeEach(CONTEXT_WARMUP, (i) => contexts.for(minter.mint(hostNames(i, 'prepared-warmup'), { now })));
    const prepared = timeEach(CONTEXT_HOSTS, (i) => contexts.for(minter.mint(hostNames(i, 'prepared'), { now })));

    // What loading the leaf costs, next to one X.509 decode: node's setCert decodes the leaf twice (PEM
    // read, then a copy kept for getCertificate()), and OpenSSL 3.0 decodes each public key through its
    // provider decoders, which is most of the time.
    const loadLeaves = Array.from({ length: CONTEXT_HOSTS }, (_, i) => minter.mint(hostNames(i, 'load'), { now }));
    const loadContexts = Array.from({ length: CONTEXT_HOSTS }, () => tls.createSecureContext({ key: minter.keyPem, minVersion: 'TLSv1.2' }));
    const setCert = timeEach(CONTEXT_HOSTS, (i) => (loadContexts[i].context as NativeContext).setCert(loadLeaves[i].chainPem));
    const decode = timeEach(CONTEXT_HOSTS, (i) => new X509Certificate(loadLeaves[i].certDer));

    const rsaMinter = new LeafMinter(rsa.ca);
    timeEach(20, (i) => rsaMinter.mint(hostNames(i, 'rsawarm'), { now }));
    const rsaCold = timeEach(RSA_CA_HOSTS, (i) => rsaMinter.mint(hostNames(i, 'rsa'), { now }));

    return [
      { name: 'ECDSA P-256 signature alone', value: mean(signOnly), unit: 'us' },
      { name: 'cold mint, P-256 CA, mean', value: mean(cold), unit: 'us', anchor: 'ECDSA P-256 signature alone' },
      { name: 'cold mint, P-256 CA, p99', value: p99(cold), unit: 'us' },
      { name: 'cold mint from upstream X509Certificate, mean', value: mean(coldFromCert), unit: 'us', anchor: 'cold mint, P-256 CA, mean' },
      { name: 'warm cache hit, mean', value: mean(warm), unit: 'us', anchor: 'cold mint, P-256 CA, mean' },
      { name: 'warm cache hit, p99', value: p99(warm), unit: 'us' },
      { name: 'first visit: cold mint + TLS context from scratch (key as PEM), mean', value: mean(scratch), unit: 'us', anchor: 'cold mint, P-256 CA, mean' },
      {
        name: 'first visit: cold mint + prepared TLS context, mean', value: mean(prepared), unit: `us (pool of ${DEFAULT_PREPARED_CONTEXTS} per key in the engine)`,
        anchor: 'first visit: cold mint + TLS context from scratch (key as PEM), mean',
      },
      { name: 'first visit: cold mint + prepared TLS context, p99', value: p99(prepared), unit: 'us' },
      { name: 'loading the leaf into a prepared context (setCert), mean', value: mean(setCert), unit: 'us', anchor: 'first visit: cold mint + prepared TLS context, mean' },
      { name: 'one X.509 decode (X509Certificate from DER), mean', value: mean(decode), unit: 'us', anchor: 'loading the leaf into a prepared context (setCert), mean' },
      { name: 'cold mint, RSA-3072 CA, mean', value: mean(rsaCold), unit: 'us', anchor: 'cold mint, P-256 CA, mean' },
      { name: 'cold mint, RSA-3072 CA, p99', value: p99(rsaCold), unit: 'us' },
    ];
  } finally {
    for (const d of [p256.dir, rsa.dir]) fs.rmSync(d, { recursive: true, force: true });
  }
}
