// The inspection engine's public types: the flow it is handed, its options,
// and the sinks it writes to.

import type { RelayTap } from '../../netstack';
import type { LoadedCa } from '../ca';
import type { BypassVerifier } from '../bypass';
import type { BypassProbe } from '../bypass_probe';
import type { MtlsHosts } from '../exemptions';
import type { FlowPolicyHook } from '../flow_policy';
import type { LeafMinter } from '../mint';
import type { PinningTracker } from '../pinning';
import type { AiaFetcher, Dialer, HttpFetcher, OcspCache, RevocationMode, TrustStore } from '../upstream';

export interface InspectedFlow {
  user: string;
  peer: string;
  clientAddress: string;
  clientPort: number;
  dstAddress: string;
  dstPort: number;
  startedAt: number;
  /** This flow's policy; without one the flow is inspected (and non-TLS follows `nonTls`). */
  policy?: FlowPolicyHook;
  /** The deciding rule and its action, carried by every record of the flow (the hook sets them as it decides). */
  rule?: string;
  action?: string;
}

export type OnUpstreamError = 'block' | 'untrusted-ca';
/** What to do with a stream on an inspect port that is not TLS (`tls.nonTls`). */
export type NonTlsAction = 'block' | 'allow';
/**
 * `tls.pinning.mode`: learn (a learned pin is a bypass candidate at once),
 * approve (a learned pin waits for an admin's approval), off (nothing is
 * learned, and pins bypass nothing; rejections are still logged).
 */
export type PinningMode = 'learn' | 'approve' | 'off';

/** Admin-approved (user, host) bypasses; consulted per flow, so it may change while running. */
export interface PinApprovals {
  isApproved(user: string, host: string): boolean;
}

/** Where records go; UserLog implements it. */
export interface RecordSink {
  write(user: string, peer: string, type: string, fields?: Record<string, unknown>): void;
}

export interface HttpLogContext {
  /** The client's SNI, or null. */
  sni: string | null;
}

/** The relay's tap for one inspected flow's decrypted bytes (mitm/http_log), or null for none. */
export type HttpLoggerFactory = (flow: InspectedFlow, alpn: string | null, ctx: HttpLogContext) => RelayTap | null;

/** What the engine's core decides with (core.ts); no I/O behind any of it. */
export interface InspectionCoreOptions {
  ca: LoadedCa;
  /** Signs leaves for upstreams that failed validation in 'untrusted-ca' mode; never given to clients. */
  untrustedCa: LoadedCa;
  tls?: { onUpstreamError?: OnUpstreamError; revocation?: RevocationMode };
  pinning?: {
    tracker?: PinningTracker;
    /** Default 'learn'. */
    mode?: PinningMode;
    approvals?: PinApprovals;
  };
  /** The bypass gate's verdict cache (may be shared between engines). */
  bypass?: BypassVerifier;
  httpLogger?: HttpLoggerFactory;
  /** Servers learned to demand client certificates (default: a table with the pinning tracker's TTL). */
  mtls?: MtlsHosts;
  /** Default 'block'. */
  nonTls?: NonTlsAction;
  timeouts?: { clientHelloMs?: number; upstreamHandshakeMs?: number; clientHandshakeMs?: number };
  minter?: LeafMinter;
  untrustedMinter?: LeafMinter;
}

/** The core's options plus what its stream adapter needs to do the I/O (streams.ts). */
export interface InspectionEngineOptions extends InspectionCoreOptions {
  trust: TrustStore;
  records: RecordSink;
  /** How probes reach a destination: the dialer the flows use. Default: netstack's connectUpstream. */
  dial?: Dialer;
  /** How the bypass gate's probe is made; default: a TLS handshake and validation with this engine's trust, revocation and dialer. */
  probe?: BypassProbe;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  /** The fetcher for AIA and OCSP on behalf of one flow (the egress guard's, which logs refusals for its user); overrides `fetch`. */
  fetchFor?: (flow: InspectedFlow) => HttpFetcher;
  ocspCache?: OcspCache;
  /** The wall clock and timers (tests pass a fake one). */
  clock?: EngineClock;
}

/** The one clock of the engine: read by its adapter only, and passed in to the core. */
export interface EngineClock {
  /** Wall-clock ms. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const DEFAULT_CLIENT_HELLO_TIMEOUT_MS = 10_000;
export const DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS = 15_000;
export const DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS = 15_000;
