// Verified bypass: the one gate every "relay this TLS flow undecrypted"
// decision goes through, whatever made it (a learned pin, an admin's
// approval, a policy rule).
//
// A bypass is granted for a name (the SNI), but the name is whatever the
// client wrote into its ClientHello: relaying raw on the name alone lets any
// employee reach any server uninspected by sending a bypassed name to it.
// So before a flow is relayed raw, the concentrator itself completes a TLS
// handshake with the flow's destination (same address and port), on a
// separate probe connection, and validates the certificate for that name
// under exactly the rules inspection uses (chain, name, validity,
// revocation: secureUpstream). A destination that cannot prove the name is
// inspected instead, never relayed raw.
//
// Verdicts are cached per (address, port, name): positive ones for
// positiveTtlMs (never past the leaf's notAfter), negative ones for
// negativeTtlMs; the cache is bounded; concurrent flows to one destination
// share one probe.
//
// A server that demands a client certificate (mutual TLS) proves the name
// too: its chain is validated before it asks (TLS 1.3: certificate_required
// after our side finished; TLS 1.2: the chain read in clear, mtls_scan.ts).
//
// Limit: a destination that relays TLS for the name to the genuine server
// (an SNI proxy) proves the name; what it does with the flow that follows is
// beyond what a handshake can show. Every bypass is logged (tls_bypass).

import type { X509Certificate } from 'node:crypto';
import { ExpiringLru } from './expiring_lru';
import {
  type AiaFetcher, type DialTlsOptions, type Dialer, type HttpFetcher, type OcspCache, type RevocationMode, type TrustStore, type UpstreamError,
  HANDSHAKE_FAILURE_CODE, dialTls, probeClientCertificateDemand,
} from './upstream';

export interface BypassTarget {
  /** The flow's destination: where its raw bytes would go. */
  address: string;
  port: number;
  /** The name the destination must prove: the client's SNI, or null for the address itself (IP SANs). */
  name: string | null;
  /** Offered in the probe as the client offered it. */
  alpn: string[];
}

export type ProbeResult = { ok: true; notAfter: number } | { ok: false; reason: UpstreamError; detail: string };
export type BypassProbe = (target: BypassTarget) => Promise<ProbeResult>;
/** `cached`: answered from an earlier probe. */
export type BypassVerdict = ProbeResult & { cached: boolean };

export const DEFAULT_BYPASS_POSITIVE_TTL_MS = 10 * 60_000;
/** Short: a destination that failed (or was down) gets another chance soon. */
export const DEFAULT_BYPASS_NEGATIVE_TTL_MS = 60_000;
export const DEFAULT_BYPASS_CACHE_ENTRIES = 10_000;

export interface BypassVerifierOptions {
  probe: BypassProbe;
  positiveTtlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

export class BypassVerifier {
  /** Probes actually made (not answered from the cache or an in-flight probe). */
  probes = 0;
  private readonly verdicts: ExpiringLru<ProbeResult>;
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();
  private readonly now: () => number;
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(private readonly opts: BypassVerifierOptions) {
    this.verdicts = new ExpiringLru(opts.maxEntries ?? DEFAULT_BYPASS_CACHE_ENTRIES);
    this.now = opts.now ?? Date.now;
    this.positiveTtlMs = opts.positiveTtlMs ?? DEFAULT_BYPASS_POSITIVE_TTL_MS;
    this.negativeTtlMs = opts.negativeTtlMs ?? DEFAULT_BYPASS_NEGATIVE_TTL_MS;
  }

  /** Never rejects: a probe that throws is a negative verdict. */
  async verify(target: BypassTarget): Promise<BypassVerdict> {
    const key = verdictKey(target);
    const hit = this.verdicts.get(key, this.now());
    if (hit) return { ...hit, cached: true };
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.probeOnce(key, target);
      this.inFlight.set(key, pending);
    }
    return { ...(await pending), cached: false };
  }

  /** Verdicts held (bounded by maxEntries). */
  get cacheSize(): number {
    return this.verdicts.size;
  }

  private async probeOnce(key: string, target: BypassTarget): Promise<ProbeResult> {
    this.probes++;
    let result: ProbeResult;
    try {
      result = await this.opts.probe(target);
    } catch (err) {
      result = { ok: false, reason: 'tls_handshake_failed', detail: `probe failed: ${err instanceof Error ? err.message : String(err)}` };
    } finally {
      this.inFlight.delete(key);
    }
    const now = this.now();
    const until = result.ok ? Math.min(now + this.positiveTtlMs, result.notAfter) : now + this.negativeTtlMs;
    this.verdicts.set(key, result, until);
    return result;
  }
}

/** NUL occurs in neither an address nor a host name. */
function verdictKey(t: BypassTarget): string {
  return `${t.address}\0${t.port}\0${t.name?.toLowerCase() ?? ''}`;
}

export interface TlsProbeOptions {
  trust: TrustStore;
  revocation: RevocationMode;
  timeoutMs: number;
  /** The dialer the flows use, so a probe obeys the same egress rules. */
  dial?: Dialer;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  ocspCache?: OcspCache;
  now?: () => number;
  onSoftFail?: (target: BypassTarget, detail: string) => void;
}

/** A probe that completes a TLS handshake with the target and validates it as inspection would. */
export function tlsProbe(opts: TlsProbeOptions): BypassProbe {
  return async (target) => {
    const connect: DialTlsOptions = {
      host: target.address,
      port: target.port,
      servername: target.name ?? undefined,
      alpn: target.alpn,
      trust: opts.trust,
      revocation: opts.revocation,
      timeoutMs: opts.timeoutMs,
      dial: opts.dial,
      aia: opts.aia,
      fetch: opts.fetch,
      ocspCache: opts.ocspCache,
      now: opts.now ? () => new Date((opts.now as () => number)()) : undefined,
      onSoftFail: (detail) => opts.onSoftFail?.(target, detail),
    };
    const up = await dialTls(connect);
    // Validated before the server asked for a client certificate: the name is proven all the same.
    if (!up.ok && up.error === 'client_certificate_required' && up.chain?.[0]) return { ok: true, notAfter: notAfterOf(up.chain[0]) };
    if (!up.ok && up.code === HANDSHAKE_FAILURE_CODE) {
      const mtls = await probeClientCertificateDemand(connect);
      if (mtls?.ok) return { ok: true, notAfter: notAfterOf(mtls.leaf) };
      if (mtls) return { ok: false, reason: mtls.error, detail: mtls.detail };
    }
    if (!up.ok) return { ok: false, reason: up.error, detail: up.detail };
    // A clean close_notify: the probe is an ordinary, short TLS connection for the origin.
    up.socket.end();
    setTimeout(() => up.socket.destroy(), 1_000).unref();
    return { ok: true, notAfter: notAfterOf(up.leaf) };
  };
}

function notAfterOf(leaf: X509Certificate): number {
  const t = Date.parse(leaf.validTo);
  return Number.isFinite(t) ? t : 0;
}
