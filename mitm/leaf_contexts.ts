// The client side's TLS contexts, one per minted leaf, made cheap for a
// first visit. Measured on node 20 / OpenSSL 3: tls.createSecureContext with
// a leaf costs about 0.9 ms, of which 0.17 ms is the SSL_CTX itself and
// 0.37 ms decoding the private key from PEM; the leaf's certificate is the
// only part that differs per host, since every leaf of a minter shares one
// key (mint.ts). So contexts with that key already loaded are made ahead, in
// the background, and a first visit only sets its certificate on one (about
// 0.28 ms: node decodes the leaf twice, from the PEM and for the copy that
// getCertificate() returns, and OpenSSL 3.0 decodes each public key through
// its provider decoders; node has no way to load a certificate with fewer).
// A prepared context's first handshake costs no more than its later ones
// (200 alternating pairs on loopback: medians within 0.06 ms).
//
// The pool is refilled once first visits pause (a page opens its new hosts
// in a burst), one context at a time, spaced out: right away, or all at once,
// the refill would land on the very handshakes the prepared contexts were
// meant to speed up. Below half full it refills even while first visits go
// on, so a steady stream of them never runs it dry.
//
// All contexts of a key share one set of session-ticket keys: a client that
// resumes (RFC 8446 §2.2) skips the certificate and the signature, also
// after its leaf was re-minted into a new context.

import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type { MintedLeaf } from './mint';

/** Contexts kept ready per leaf key (about 40 KB each): a page opening up to half as many new hosts at once finds them all ready. */
export const DEFAULT_PREPARED_CONTEXTS = 32;
/** How long after the last context was taken the pool starts refilling. */
export const REFILL_DELAY_MS = 250;
/** Between two contexts made by a refill (each about 0.5 ms of CPU). */
export const REFILL_INTERVAL_MS = 20;

/** node's SecureContext handle; setCert is how createSecureContext itself loads a certificate. */
export interface NativeContext {
  setCert(cert: string): void;
}

interface Pool {
  ready: tls.SecureContext[];
  /** The next refill step, when one is due. */
  timer: NodeJS.Timeout | null;
}

export class LeafContexts {
  private readonly byLeaf = new WeakMap<MintedLeaf, tls.SecureContext>();
  private readonly pools = new Map<string, Pool>();
  /** RFC 5077 ticket keys (48 bytes, node's format), one set for every context made here. */
  private readonly ticketKeys = randomBytes(48);

  constructor(private readonly prepared = DEFAULT_PREPARED_CONTEXTS) {}

  /** Starts making contexts for leaves that use `keyPem`, before the first visit needs one. */
  prepare(keyPem: string): void {
    this.refill(keyPem, this.pool(keyPem), 0);
  }

  /** The leaf's context, the same object for the same leaf (LeafMinter returns cached leaves as the same object). */
  for(leaf: MintedLeaf): tls.SecureContext {
    let ctx = this.byLeaf.get(leaf);
    if (ctx) return ctx;
    const pool = this.pool(leaf.keyPem);
    ctx = pool.ready.pop() ?? this.keyed(leaf.keyPem);
    (ctx.context as NativeContext).setCert(leaf.chainPem);
    this.byLeaf.set(leaf, ctx);
    this.refill(leaf.keyPem, pool, REFILL_DELAY_MS);
    return ctx;
  }

  private pool(keyPem: string): Pool {
    let pool = this.pools.get(keyPem);
    if (!pool) {
      pool = { ready: [], timer: null };
      this.pools.set(keyPem, pool);
    }
    return pool;
  }

  /** A context with the key and everything but a certificate. */
  private keyed(keyPem: string): tls.SecureContext {
    return tls.createSecureContext({ key: keyPem, minVersion: 'TLSv1.2', ticketKeys: this.ticketKeys });
  }

  /** After `delayMs` (postponed by each draw while the pool is over half full), one context every REFILL_INTERVAL_MS until it is full. */
  private refill(keyPem: string, pool: Pool, delayMs: number): void {
    if (pool.ready.length >= this.prepared) return;
    if (pool.timer !== null) {
      if (pool.ready.length * 2 < this.prepared) return;
      clearTimeout(pool.timer);
    }
    const step = (): void => {
      pool.ready.push(this.keyed(keyPem));
      pool.timer = pool.ready.length < this.prepared ? setTimeout(step, REFILL_INTERVAL_MS).unref() : null;
    };
    pool.timer = setTimeout(step, delayMs).unref();
  }
}
