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
// negativeTtlMs; the cache is bounded. Sans-IO: the engine asks the cache
// (with the time) and, on a miss, has its adapter run the probe
// (bypass_probe.ts, where concurrent flows to one destination share one).
//
// A server that demands a client certificate (mutual TLS) proves the name
// too: its chain is validated before it asks (TLS 1.3: certificate_required
// after our side finished; TLS 1.2: the chain read in clear, mtls_scan.ts).
//
// Limit: a destination that relays TLS for the name to the genuine server
// (an SNI proxy) proves the name; what it does with the flow that follows is
// beyond what a handshake can show. Every bypass is logged (tls_bypass).

import { ExpiringLru } from './expiring_lru';
import type { UpstreamError } from './upstream';

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
/** `cached`: answered from an earlier probe. */
export type BypassVerdict = ProbeResult & { cached: boolean };

export const DEFAULT_BYPASS_POSITIVE_TTL_MS = 10 * 60_000;
/** Short: a destination that failed (or was down) gets another chance soon. */
export const DEFAULT_BYPASS_NEGATIVE_TTL_MS = 60_000;
export const DEFAULT_BYPASS_CACHE_ENTRIES = 10_000;

export interface BypassVerifierOptions {
  positiveTtlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
}

/** The verdict cache of the bypass gate. */
export class BypassVerifier {
  private readonly verdicts: ExpiringLru<ProbeResult>;
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(opts: BypassVerifierOptions = {}) {
    this.verdicts = new ExpiringLru(opts.maxEntries ?? DEFAULT_BYPASS_CACHE_ENTRIES);
    this.positiveTtlMs = opts.positiveTtlMs ?? DEFAULT_BYPASS_POSITIVE_TTL_MS;
    this.negativeTtlMs = opts.negativeTtlMs ?? DEFAULT_BYPASS_NEGATIVE_TTL_MS;
  }

  /** The verdict of an earlier probe still in force at `now`, or undefined: the destination must be probed. */
  cached(target: BypassTarget, now: number): ProbeResult | undefined {
    return this.verdicts.get(verdictKey(target), now);
  }

  /** A probe finished at `now`: kept for the TTL of its kind, a positive one never past the leaf's notAfter. */
  store(target: BypassTarget, result: ProbeResult, now: number): void {
    const until = result.ok ? Math.min(now + this.positiveTtlMs, result.notAfter) : now + this.negativeTtlMs;
    this.verdicts.set(verdictKey(target), result, until);
  }

  /** Verdicts held (bounded by maxEntries). */
  get cacheSize(): number {
    return this.verdicts.size;
  }
}

/** One key per (address, port, name); NUL occurs in neither an address nor a host name. */
export function verdictKey(t: BypassTarget): string {
  return `${t.address}\0${t.port}\0${t.name?.toLowerCase() ?? ''}`;
}
