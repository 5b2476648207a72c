// Revocation policy for an upstream leaf: stapled OCSP first (RFC 6066 8),
// then the responder named in the leaf's AIA, with a cache bounded in size
// and in time by each response's nextUpdate.
//
// Modes (`tls.revocation`):
//   soft (default)  revoked blocks; responder 'unknown' blocks (as Firefox does:
//                   a responder that does not know a certificate its CA issued is
//                   a red flag); unreachable / broken answers are reported through
//                   onSoftFail and allowed
//   hard            anything but a verified 'good' blocks, including a leaf with no
//                   OCSP URL (CRLs are not fetched)
//   off             nothing is checked

import type { X509Certificate } from 'node:crypto';
import { ExpiringLru } from '../expiring_lru';
import { certInfo } from '../x509';
import { certLabel } from './cert_info';
import { HttpError, HttpFetcher, fetchAsValue, httpFetch } from './http_fetch';
import { CertId, CrlReason, OcspError, OcspVerified, certIdFor, certIdKey, encodeOcspRequest, verifyOcspResponse } from './ocsp';

export type RevocationMode = 'soft' | 'hard' | 'off';
export type RevocationSource = 'stapled' | 'responder' | 'cache';
export type RevocationError = OcspError | HttpError | 'no_ocsp_url';

export type RevocationOutcome =
  | { status: 'good'; source: RevocationSource; thisUpdate: Date; nextUpdate: Date | null }
  | { status: 'revoked'; source: RevocationSource; revokedAt: Date; reason: CrlReason | null }
  | { status: 'unknown'; source: RevocationSource }
  | { status: 'error'; error: RevocationError; detail: string }
  | { status: 'not_checked' };

/** The outcome plus the policy's verdict; `failure` is set exactly when `allow` is false. */
export type RevocationResult = RevocationOutcome & { allow: boolean; failure?: 'revoked' | 'revocation_unknown' };

/** A single OCSP exchange is small: responses are ~0.5-3 KB with a responder certificate. */
const OCSP_MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_CACHE_ENTRIES = 10_000;
/** Without nextUpdate a response is reused only briefly (RFC 5019 6.2 leaves it to the client). */
const CACHE_TTL_WITHOUT_NEXT_UPDATE_MS = 60 * 60_000;
/**
 * After a responder fails to answer (network error, timeout), it is not asked again for this
 * long: otherwise in soft mode every new flow to its sites would wait out the full timeout.
 */
export const RESPONDER_BACKOFF_MS = 60_000;

/** Verified OCSP answers keyed by CertID, until nextUpdate, least recently used evicted first;
 * and responders that recently failed to answer, by URL. */
export class OcspCache {
  private readonly entries: ExpiringLru<OcspVerified>;
  private readonly unreachable: ExpiringLru<true>;

  constructor(maxEntries = DEFAULT_CACHE_ENTRIES) {
    this.entries = new ExpiringLru(maxEntries);
    this.unreachable = new ExpiringLru(maxEntries);
  }

  get(id: CertId, now: Date): OcspVerified | null {
    return this.entries.get(certIdKey(id), now.getTime()) ?? null;
  }

  put(id: CertId, response: OcspVerified): void {
    const expiresAt = response.nextUpdate ? response.nextUpdate.getTime() : response.thisUpdate.getTime() + CACHE_TTL_WITHOUT_NEXT_UPDATE_MS;
    this.entries.set(certIdKey(id), response, expiresAt);
  }

  get size(): number {
    return this.entries.size;
  }

  markUnreachable(url: string, now: Date): void {
    this.unreachable.set(url, true, now.getTime() + RESPONDER_BACKOFF_MS);
  }

  isUnreachable(url: string, now: Date): boolean {
    return this.unreachable.get(url, now.getTime()) === true;
  }
}

export const defaultOcspCache = new OcspCache();

export interface RevocationOptions {
  mode: RevocationMode;
  /** The OCSP response the server stapled, if any. */
  stapled?: Buffer;
  fetch?: HttpFetcher;
  cache?: OcspCache;
  /** Wall-clock time of the check. */
  now: Date;
  timeoutMs?: number;
  /** Told about every check that soft mode lets through without an answer. */
  onSoftFail?: (outcome: Extract<RevocationOutcome, { status: 'error' }>) => void;
}

export async function checkRevocation(leaf: X509Certificate, issuer: X509Certificate, opts: RevocationOptions): Promise<RevocationResult> {
  if (opts.mode === 'off') return { status: 'not_checked', allow: true };
  const outcome = await lookup(leaf, issuer, opts);
  return decide(outcome, opts);
}

function decide(outcome: RevocationOutcome, opts: RevocationOptions): RevocationResult {
  switch (outcome.status) {
    case 'good':
    case 'not_checked':
      return { ...outcome, allow: true };
    case 'revoked':
      return { ...outcome, allow: false, failure: 'revoked' };
    case 'unknown':
      return { ...outcome, allow: false, failure: 'revocation_unknown' };
    case 'error':
      if (opts.mode === 'hard') return { ...outcome, allow: false, failure: 'revocation_unknown' };
      opts.onSoftFail?.(outcome);
      return { ...outcome, allow: true };
  }
}

async function lookup(leaf: X509Certificate, issuer: X509Certificate, opts: RevocationOptions): Promise<RevocationOutcome> {
  const { now } = opts;
  const cache = opts.cache ?? defaultOcspCache;
  const id = certIdFor(leaf, issuer);
  let stapleProblem = '';
  if (opts.stapled && opts.stapled.length > 0) {
    const parsed = verifyOcspResponse(opts.stapled, leaf, issuer, now);
    if (parsed.ok) {
      cache.put(id, parsed.response);
      return toOutcome(parsed.response, 'stapled');
    }
    // A bad staple is not trusted, but the responder may still answer properly.
    stapleProblem = `stapled response rejected (${parsed.error}: ${parsed.detail}); `;
  }
  const cached = cache.get(id, now);
  if (cached) return toOutcome(cached, 'cache');

  const urls = certInfo(leaf).ocspUrls;
  if (urls.length === 0) return { status: 'error', error: 'no_ocsp_url', detail: `${stapleProblem}"${certLabel(leaf)}" names no OCSP responder` };
  const fetch = opts.fetch ?? httpFetch;
  const body = encodeOcspRequest(id);
  let last: Extract<RevocationOutcome, { status: 'error' }> | null = null;
  for (const url of urls) {
    if (cache.isUnreachable(url, now)) {
      last = { status: 'error', error: 'network', detail: `${stapleProblem}OCSP ${url} failed within the last ${RESPONDER_BACKOFF_MS / 1000} s; not asked again yet` };
      continue;
    }
    const req = { url, method: 'POST' as const, body, contentType: 'application/ocsp-request', timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBytes: OCSP_MAX_RESPONSE_BYTES };
    const res = await fetchAsValue(fetch, req);
    if (!res.ok) {
      if (res.error === 'network' || res.error === 'timeout') cache.markUnreachable(url, now);
      last = { status: 'error', error: res.error, detail: `${stapleProblem}OCSP ${res.detail}` };
      continue;
    }
    const parsed = verifyOcspResponse(res.body, leaf, issuer, now);
    if (parsed.ok) {
      cache.put(id, parsed.response);
      return toOutcome(parsed.response, 'responder');
    }
    last = { status: 'error', error: parsed.error, detail: `${stapleProblem}OCSP ${url}: ${parsed.detail}` };
  }
  return last ?? { status: 'error', error: 'no_ocsp_url', detail: 'no usable OCSP URL' };
}

function toOutcome(r: OcspVerified, source: RevocationSource): RevocationOutcome {
  switch (r.status) {
    case 'good':
      return { status: 'good', source, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate };
    case 'revoked':
      return { status: 'revoked', source, revokedAt: r.revokedAt, reason: r.reason };
    case 'unknown':
      return { status: 'unknown', source };
  }
}
