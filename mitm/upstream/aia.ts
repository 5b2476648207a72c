// AIA chasing (RFC 5280 4.2.2.1 caIssuers): when a server omits an
// intermediate, fetch it from the URL in the certificate as browsers do,
// instead of failing sites that every browser opens.

import { X509Certificate } from 'node:crypto';
import { HttpFetcher, fetchAsValue, httpFetch } from './http_fetch';
import { ValidationInput, ValidationResult, validateChain } from './validate';

/** Issuer certificates are ~1-2 KB; a cap far above that still bounds a hostile URL. */
const DEFAULT_MAX_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_CACHE_ENTRIES = 1_000;
/** Real chains miss at most one or two intermediates. */
const MAX_FETCHES_PER_VALIDATION = 3;

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export type AiaResult = { ok: true; certs: X509Certificate[] } | { ok: false; detail: string };

export interface AiaOptions {
  fetch?: HttpFetcher;
  timeoutMs?: number;
  maxBytes?: number;
  cacheEntries?: number;
}

export class AiaFetcher {
  private readonly cache = new Map<string, Promise<AiaResult>>();
  private readonly fetch: HttpFetcher;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly cacheEntries: number;

  constructor(opts: AiaOptions = {}) {
    this.fetch = opts.fetch ?? httpFetch;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.cacheEntries = opts.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
  }

  /**
   * Fetches (or returns the cached) certificates at a caIssuers URL. Failures
   * are not cached. `fetch` overrides this fetcher's own for one call (the
   * egress guard's fetcher of the flow that needs the issuer) and shares the cache.
   */
  fetchIssuer(url: string, fetch: HttpFetcher = this.fetch): Promise<AiaResult> {
    const hit = this.cache.get(url);
    if (hit) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.cache.delete(url);
      this.cache.set(url, hit);
      return hit;
    }
    const pending = this.load(url, fetch).then((result) => {
      if (!result.ok) this.cache.delete(url);
      return result;
    });
    this.cache.set(url, pending);
    while (this.cache.size > this.cacheEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    return pending;
  }

  private async load(url: string, fetch: HttpFetcher): Promise<AiaResult> {
    const res = await fetchAsValue(fetch, { url, method: 'GET', timeoutMs: this.timeoutMs, maxBytes: this.maxBytes });
    if (!res.ok) return { ok: false, detail: `AIA fetch failed: ${res.detail}` };
    const certs = parseIssuerBody(res.body);
    return certs.length > 0 ? { ok: true, certs } : { ok: false, detail: `AIA ${url}: body is neither a DER nor a PEM certificate` };
  }
}

/** DER (application/pkix-cert, the RFC 5280 form) or PEM, which some CAs serve. PKCS#7 bundles are not read. */
export function parseIssuerBody(body: Buffer): X509Certificate[] {
  const text = body.toString('latin1');
  const blocks = text.match(PEM_CERT_RE);
  try {
    return blocks ? blocks.map((b) => new X509Certificate(b)) : [new X509Certificate(body)];
  } catch {
    return [];
  }
}

/**
 * validateChain, fetching each missing issuer named by caIssuers and retrying,
 * up to MAX_FETCHES_PER_VALIDATION times. The result is validateChain's: a failed
 * fetch leaves the 'incomplete_chain' verdict, with the fetch error appended.
 */
export async function validateWithAia(input: ValidationInput, aia: AiaFetcher, fetch?: HttpFetcher): Promise<ValidationResult> {
  const extra = [...(input.extraIntermediates ?? [])];
  const tried = new Set<string>();
  for (let i = 0; ; i++) {
    const result = validateChain({ ...input, extraIntermediates: extra });
    if (result.ok || result.reason !== 'incomplete_chain' || !result.missingIssuerUrl) return result;
    const url = result.missingIssuerUrl;
    if (tried.has(url) || i >= MAX_FETCHES_PER_VALIDATION) return result;
    tried.add(url);
    const fetched = await aia.fetchIssuer(url, fetch);
    if (!fetched.ok) return { ...result, detail: `${result.detail}; ${fetched.detail}` };
    extra.push(...fetched.certs);
  }
}
