// The inspection engine: one call per port-443 flow that the TCP stack has
// terminated, with the upstream TCP connection already open. It reads the
// ClientHello, decides (policy hook, learned or approved pins), validates the
// upstream strictly, and then either relays decrypted bytes under a minted
// leaf, splices raw bytes (only once the destination proved the name:
// bypass.ts), or refuses, and writes one record per ending. A flow that is
// not TLS is blocked unless `nonTls` allows it.

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { LoadedCa } from './ca';
import { BypassVerifier, tlsProbe } from './bypass';
import { ClientHelloInfo, ClientHelloReader } from './client_hello';
import { type FirstBytes, readFirstBytes } from './first_bytes';
import { FlowRun } from './flow_run';
import { LeafMinter, MintedLeaf } from './mint';
import { PinningTracker, alertName, isCertificateRejection } from './pinning';
import { RelayResult, RelayTap, closeRaw, relay } from './relay';
import { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, refuseWithAlert, terminateClientTls } from './terminate';
import {
  type AiaFetcher, type Dialer, type HttpFetcher, type OcspCache, type RevocationMode, type TrustStore, type UpstreamError, secureUpstream,
} from './upstream';

export interface InspectedFlow {
  user: string;
  peer: string;
  clientAddress: string;
  clientPort: number;
  dstAddress: string;
  dstPort: number;
  startedAt: number;
}

export type FlowDecision = 'inspect' | 'bypass' | 'block';
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

/** Receives the decrypted bytes of one inspected flow, for mitm/http_log. */
export interface HttpStreamLogger {
  clientToServer(chunk: Buffer): void;
  serverToClient(chunk: Buffer): void;
  end(): void;
}

export interface HttpLogContext {
  /** The client's SNI, or null. */
  sni: string | null;
}

export type HttpLoggerFactory = (flow: InspectedFlow, alpn: string | null, ctx: HttpLogContext) => HttpStreamLogger | null;

export interface InspectionEngineOptions {
  ca: LoadedCa;
  /** Signs leaves for upstreams that failed validation in 'untrusted-ca' mode; never given to clients. */
  untrustedCa: LoadedCa;
  trust: TrustStore;
  tls?: { onUpstreamError?: OnUpstreamError; revocation?: RevocationMode };
  pinning?: {
    tracker?: PinningTracker;
    /** Default 'learn'. */
    mode?: PinningMode;
    approvals?: PinApprovals;
  };
  /** Gate for every bypass; default: a probe with this engine's trust, revocation, dialer and upstream timeout. */
  bypass?: BypassVerifier;
  /** How probes reach a destination: the dialer the flows use. Default: a plain TCP connect. */
  dial?: Dialer;
  records: RecordSink;
  httpLogger?: HttpLoggerFactory;
  /** Policy hook, consulted once the ClientHello is read; default 'inspect'. A 'bypass' still goes through `bypass`. */
  decide?: (flow: InspectedFlow, hello: ClientHelloInfo) => FlowDecision;
  /** Default 'block'. */
  nonTls?: NonTlsAction;
  timeouts?: { clientHelloMs?: number; upstreamHandshakeMs?: number; clientHandshakeMs?: number };
  minter?: LeafMinter;
  untrustedMinter?: LeafMinter;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  /** The fetcher for AIA and OCSP on behalf of one flow (the egress guard's, which logs refusals for its user); overrides `fetch`. */
  fetchFor?: (flow: InspectedFlow) => HttpFetcher;
  ocspCache?: OcspCache;
  now?: () => number;
}

export const DEFAULT_CLIENT_HELLO_TIMEOUT_MS = 10_000;
export const DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS = 15_000;
export const DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS = 15_000;

/**
 * Upstream failures that are not a verdict on the upstream's security but on
 * reaching it: answered with internal_error rather than handshake_failure.
 * With no upstream session there is no certificate to show either, so
 * 'untrusted-ca' mode refuses these (and protocol_too_old) with an alert too.
 */
const TRANSPORT_FAILURES: ReadonlySet<UpstreamError> = new Set(['connect_failed', 'tls_handshake_failed', 'timeout']);

export class InspectionEngine {
  readonly counters: Record<string, number> = {};
  readonly pinning: PinningTracker;
  readonly bypass: BypassVerifier;
  readonly now: () => number;
  private readonly minter: LeafMinter;
  private readonly untrustedMinter: LeafMinter;
  private readonly onUpstreamError: OnUpstreamError;
  private readonly revocation: RevocationMode;
  private readonly pinningMode: PinningMode;
  private readonly nonTls: NonTlsAction;
  private readonly timeouts: Required<NonNullable<InspectionEngineOptions['timeouts']>>;

  constructor(private readonly opts: InspectionEngineOptions) {
    this.now = opts.now ?? Date.now;
    this.minter = opts.minter ?? new LeafMinter(opts.ca);
    this.untrustedMinter = opts.untrustedMinter ?? new LeafMinter(opts.untrustedCa);
    if (opts.ca.fingerprint === opts.untrustedCa.fingerprint) throw new Error('the untrusted CA must differ from the company CA');
    this.onUpstreamError = opts.tls?.onUpstreamError ?? 'block';
    this.revocation = opts.tls?.revocation ?? 'soft';
    this.pinning = opts.pinning?.tracker ?? new PinningTracker();
    this.pinningMode = opts.pinning?.mode ?? 'learn';
    this.nonTls = opts.nonTls ?? 'block';
    this.timeouts = {
      clientHelloMs: opts.timeouts?.clientHelloMs ?? DEFAULT_CLIENT_HELLO_TIMEOUT_MS,
      upstreamHandshakeMs: opts.timeouts?.upstreamHandshakeMs ?? DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS,
      clientHandshakeMs: opts.timeouts?.clientHandshakeMs ?? DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS,
    };
    this.bypass = opts.bypass ?? new BypassVerifier({
      now: this.now,
      probe: tlsProbe({
        trust: opts.trust, revocation: this.revocation, timeoutMs: this.timeouts.upstreamHandshakeMs, dial: opts.dial,
        aia: opts.aia, fetch: opts.fetch, ocspCache: opts.ocspCache, now: this.now,
        onSoftFail: () => this.count('bypass_probe.revocation_soft_fail'),
      }),
    });
  }

  /** Takes ownership of both streams. Never throws; every ending is recorded. */
  handle(client: Duplex, upstream: Socket, flow: InspectedFlow): void {
    this.count('flows');
    const run = new FlowRun(flow, client, upstream, this);
    try {
      // Half-close must reach the other side (relay.ts); errors before the relay owns a stream are recorded, not thrown.
      client.allowHalfOpen = true;
      upstream.allowHalfOpen = true;
      client.on('error', () => this.count('client_stream_errors'));
      upstream.on('error', () => this.count('upstream_stream_errors'));
      this.run(run).catch((err: unknown) => this.internalError(run, err));
    } catch (err) {
      this.internalError(run, err);
    }
  }

  count(key: string): void {
    this.counters[key] = (this.counters[key] ?? 0) + 1;
  }

  record(flow: InspectedFlow, type: string, fields: Record<string, unknown>): void {
    try {
      this.opts.records.write(flow.user, flow.peer, type, fields);
    } catch {
      this.count('record_errors');
    }
  }

  private internalError(run: FlowRun, err: unknown): void {
    this.count('internal_errors');
    run.abort('internal_error', { detail: err instanceof Error ? err.message : String(err) });
  }

  private async run(run: FlowRun): Promise<void> {
    const reader = new ClientHelloReader();
    const first = await readFirstBytes(run.client, run.upstream, reader, this.timeouts.clientHelloMs);
    const replay = reader.buffered();
    if (first.kind === 'not_tls') {
      this.notTls(run, first, replay);
      return;
    }
    if (first.kind !== 'done') {
      this.count(`client_hello.${first.reason}`);
      run.abort('client_hello_failed', { reason: first.reason, detail: first.detail });
      return;
    }
    const hello = first.hello;
    run.sni = hello.sni;
    run.host = hello.sni ?? run.flow.dstAddress;
    const decision = this.opts.decide?.(run.flow, hello) ?? 'inspect';
    if (decision === 'block') {
      run.record('tls_blocked', { host: run.host, reason: 'policy' });
      run.upstream.destroy();
      refuseWithAlert(run.client, ALERT_ACCESS_DENIED);
      run.finish('blocked_by_policy');
      return;
    }
    const reason = decision === 'bypass' ? 'policy' : this.pinnedBypass(run.flow.user, run.host);
    if (reason !== null) await this.bypassOrInspect(run, hello, replay, reason);
    else await this.inspect(run, hello, replay);
  }

  /** Why a pin asks for a bypass of (user, host) under the pinning mode, or null. */
  private pinnedBypass(user: string, host: string): 'pinned' | 'pinned_approved' | null {
    if (this.pinningMode === 'off') return null;
    if (this.opts.pinning?.approvals?.isApproved(user, host)) return 'pinned_approved';
    if (this.pinningMode === 'learn' && this.pinning.isPinned(user, host, this.now())) return 'pinned';
    return null;
  }

  /**
   * The only way a TLS flow is relayed undecrypted: the destination must
   * first prove the name (bypass.ts). One that cannot is inspected instead,
   * where its certificate meets `tls.onUpstreamError` like any other.
   */
  private async bypassOrInspect(run: FlowRun, hello: ClientHelloInfo, replay: Buffer, reason: string): Promise<void> {
    const { dstAddress, dstPort } = run.flow;
    const verdict = await this.bypass.verify({ address: dstAddress, port: dstPort, name: hello.sni, alpn: hello.alpn });
    if (verdict.ok) {
      this.count('bypass.verified');
      run.mode = 'bypass';
      run.record('tls_bypass', { host: run.host, reason, verified: verdict.cached ? 'cache' : 'probe' });
      this.splice(run, replay, Buffer.alloc(0));
      return;
    }
    this.count(`bypass_refused.${verdict.reason}`);
    run.record('tls_bypass_refused', { host: run.host, dst: `${dstAddress}:${dstPort}`, bypass: reason, reason: verdict.reason, detail: verdict.detail });
    await this.inspect(run, hello, replay);
  }

  /** Not TLS: blocked, or relayed raw (server's greeting first, if it spoke) when `nonTls` allows. Only the guess is logged. */
  private notTls(run: FlowRun, first: Extract<FirstBytes, { kind: 'not_tls' }>, replay: Buffer): void {
    run.mode = 'non_tls';
    const action = this.nonTls;
    this.count(`non_tls.${action}.${first.guess}`);
    run.record('non_tls', { dst: `${run.flow.dstAddress}:${run.flow.dstPort}`, guess: first.guess, from: first.from, action });
    if (action === 'block') {
      run.abort('non_tls_blocked', { guess: first.guess });
      return;
    }
    this.splice(run, replay, first.serverBytes);
  }

  private async inspect(run: FlowRun, hello: ClientHelloInfo, replay: Buffer): Promise<void> {
    run.mode = 'inspect';
    const up = await secureUpstream(run.upstream, {
      host: run.flow.dstAddress,
      port: run.flow.dstPort,
      servername: hello.sni ?? undefined,
      alpn: hello.alpn,
      trust: this.opts.trust,
      revocation: this.revocation,
      timeoutMs: this.timeouts.upstreamHandshakeMs,
      aia: this.opts.aia,
      fetch: this.opts.fetchFor?.(run.flow) ?? this.opts.fetch,
      ocspCache: this.opts.ocspCache,
      now: () => new Date(this.now()),
      onSoftFail: (detail) => run.record('tls_revocation_soft_fail', { host: run.host, detail }),
    });
    let issuer: 'company' | 'untrusted' = 'company';
    if (!up.ok) {
      const action = up.socket && this.onUpstreamError === 'untrusted-ca' ? 'untrusted-ca' : 'block';
      this.count(`upstream_rejected.${up.error}`);
      run.record('tls_upstream_rejected', { host: run.host, reason: up.error, detail: up.detail, action });
      if (action === 'block') {
        up.socket?.destroy();
        run.upstream.destroy();
        refuseWithAlert(run.client, TRANSPORT_FAILURES.has(up.error) ? ALERT_INTERNAL_ERROR : ALERT_HANDSHAKE_FAILURE);
        run.finish('upstream_rejected', { reason: up.error });
        return;
      }
      issuer = 'untrusted';
    }
    const upstreamTls = up.socket as tls.TLSSocket;
    run.alpn = up.alpn ?? null;
    const leaf = this.mintFor(run, up.ok ? up.leaf : up.chain?.[0], issuer);
    if (!leaf) {
      upstreamTls.destroy();
      refuseWithAlert(run.client, ALERT_INTERNAL_ERROR);
      run.finish('mint_failed');
      return;
    }
    const term = await terminateClientTls(run.client, replay, leaf, run.alpn, this.timeouts.clientHandshakeMs, this.now);
    if (!term.ok) {
      upstreamTls.destroy();
      run.upstream.destroy();
      run.client.destroy();
      if (issuer === 'company' && isCertificateRejection(term.end)) this.pinFailure(run, term.end.alert);
      run.finish(issuer === 'company' ? 'client_handshake_failed' : 'client_refused_untrusted_leaf', { clientEnd: term.end });
      return;
    }
    this.relayInspected(run, term.socket, upstreamTls, issuer);
  }
  private mintFor(run: FlowRun, upstreamLeaf: X509Certificate | undefined, issuer: 'company' | 'untrusted'): MintedLeaf | null {
    const minter = issuer === 'company' ? this.minter : this.untrustedMinter;
    const now = this.now();
    const sni = run.sni ?? undefined;
    try {
      if (upstreamLeaf) return minter.mint(upstreamLeaf, { sni, now });
    } catch (err) {
      // An expired or nameless upstream leaf cannot be mirrored; the untrusted leaf names what the client asked for.
      if (issuer === 'company') {
        run.record('tls_mint_failed', { host: run.host, detail: (err as Error).message });
        return null;
      }
    }
    try {
      const type = run.sni ? 'dns' : 'ip';
      return minter.mint({ subjectCN: run.sni ?? undefined, sans: [{ type, value: run.host }] }, { sni, now });
    } catch (err) {
      run.record('tls_mint_failed', { host: run.host, detail: (err as Error).message });
      return null;
    }
  }

  private relayInspected(run: FlowRun, clientTls: tls.TLSSocket, upstreamTls: tls.TLSSocket, issuer: 'company' | 'untrusted'): void {
    const { user } = run.flow;
    let tap: RelayTap | undefined;
    try {
      tap = this.opts.httpLogger?.(run.flow, run.alpn, { sni: run.sni }) ?? undefined;
    } catch {
      this.count('http_logger_errors');
    }
    relay(clientTls, upstreamTls, {
      tap,
      onTapError: () => this.count('http_logger_errors'),
      onClientData: () => {
        if (issuer === 'company') this.pinning.recordSuccess(user, run.host, this.now());
      },
      onEnd: (r: RelayResult) => {
        closeRaw(run.client, r.end === 'closed');
        closeRaw(run.upstream, r.end === 'closed');
        run.finish(r.end, { issuer, bytesFromClient: r.fromClient, bytesFromServer: r.fromServer, detail: r.detail });
      },
    });
  }

  /** The client refused our certificate with an alert (pinning.ts): evidence, learned unless the mode is off. */
  private pinFailure(run: FlowRun, alert: number): void {
    this.count('client_rejected_certificate');
    if (this.pinningMode === 'off') {
      run.record('tls_client_rejected', { host: run.host, alert: alertName(alert), learned: false });
      return;
    }
    const outcome = this.pinning.recordFailure(run.flow.user, run.host, this.now());
    run.record('tls_client_rejected', { host: run.host, alert: alertName(alert), failures: outcome.failures });
    if (outcome.flipped) {
      this.count('pinned');
      run.record('tls_pinned', { host: run.host, failures: outcome.failures, mode: this.pinningMode, bypass: this.pinningMode === 'learn' });
    }
  }

  /** Raw relay: the client's bytes read so far go upstream first, the server's (if it spoke first) to the client, then bytes flow untouched. */
  private splice(run: FlowRun, replay: Buffer, fromServer: Buffer): void {
    if (replay.length > 0) run.upstream.write(replay);
    if (fromServer.length > 0) run.client.write(fromServer);
    relay(run.client, run.upstream, {
      onEnd: (r) => run.finish(r.end, {
        bytesFromClient: r.fromClient + replay.length, bytesFromServer: r.fromServer + fromServer.length, detail: r.detail,
      }),
    });
  }
}
