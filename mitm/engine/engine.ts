// The inspection engine: one call per TLS-port flow that the TCP stack has
// terminated, with the upstream TCP connection already open. It reads the
// ClientHello, asks the flow's policy hook (flow_policy.ts) what to do, and
// then either relays decrypted bytes under a minted leaf, splices raw bytes
// (a name-based bypass only once the destination proved the name:
// bypass.ts), or refuses, and writes one record per ending. A flow that is
// not TLS is blocked unless policy or `nonTls` allows it. A flow that ends
// undecrypted carries its reason from the fixed list (flow_policy.ts).

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { BypassVerifier, tlsProbe } from '../bypass';
import { ClientHelloInfo, ClientHelloReader } from '../client_hello';
import { type FirstBytes, readFirstBytes } from './first_bytes';
import { FlowRun } from './flow_run';
import { MtlsHosts } from '../exemptions';
import { type TlsDecision, type UndecryptedReason, upstreamCertError } from '../flow_policy';
import {
  DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS,
  type InspectedFlow, type InspectionEngineOptions, type NonTlsAction, type OnUpstreamError, type PinningMode,
} from './types';
import { LeafMinter, MintedLeaf } from '../mint';
import { PinningTracker, alertName, isCertificateRejection } from '../pinning';
import { RelayResult, RelayTap, closeRaw, relay } from '../../netstack';
import { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, refuseWithAlert, terminateClientTls } from '../terminate';
import {
  type RevocationMode, type UpstreamError, CERTIFICATE_REQUIRED_CODE, HANDSHAKE_FAILURE_CODE, probeClientCertificateDemand, secureUpstream,
} from '../upstream';

export type {
  HttpLogContext, HttpLoggerFactory, InspectedFlow, InspectionEngineOptions, NonTlsAction, OnUpstreamError, PinApprovals, PinningMode, RecordSink,
} from './types';
export { DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS } from './types';

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
  readonly mtls: MtlsHosts;
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
    this.mtls = opts.mtls ?? new MtlsHosts(this.pinning.ttlMs);
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
      this.opts.records.write(flow.user, flow.peer, type, flow.rule === undefined ? fields : { ...fields, rule: flow.rule, action: flow.action });
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
    const hook = run.flow.policy;
    if (first.kind === 'not_tls') {
      this.notTls(run, first, replay, hook?.nonTls() ?? 'nonTls');
      return;
    }
    if (first.kind !== 'done') {
      this.count(`client_hello.${first.reason}`);
      run.undecrypted = 'protocol-error';
      run.abort('client_hello_failed', { reason: first.reason, detail: first.detail });
      return;
    }
    const hello = first.hello;
    run.sni = hello.sni;
    run.host = hello.sni ?? run.flow.dstAddress;
    if (hello.hasEch) this.count('ech_client_hello');
    const decision: TlsDecision = hook?.tls(hello) ?? { action: 'inspect' };
    if (decision.action === 'block') {
      this.refuse(run, 'policy');
      return;
    }
    if (decision.action === 'bypass') {
      if (decision.verify) await this.bypassOrElse(run, hello, replay, decision.reason, decision.unverified);
      else this.relayRaw(run, replay, decision.reason, 'none');
      return;
    }
    const exempt = this.exemption(run.flow.user, run.host);
    if (exempt !== null) await this.bypassOrElse(run, hello, replay, exempt, 'inspect');
    else await this.inspect(run, hello, replay);
  }

  /** Refused by policy, or by a name the destination could not prove: access_denied (RFC 8446 §6.2). */
  private refuse(run: FlowRun, reason: string): void {
    run.record('tls_blocked', { host: run.host, reason });
    run.upstream.destroy();
    refuseWithAlert(run.client, ALERT_ACCESS_DENIED);
    run.finish('blocked_by_policy');
  }

  /** A learned or approved exemption of (user, host) from inspection, under the pinning mode; mTLS hosts in every mode. */
  private exemption(user: string, host: string): UndecryptedReason | null {
    const now = this.now();
    if (this.pinningMode !== 'off') {
      if (this.opts.pinning?.approvals?.isApproved(user, host)) return 'pinned-learned';
      if (this.pinningMode === 'learn' && this.pinning.isPinned(user, host, now)) return 'pinned-learned';
    }
    return this.mtls.has(user, host, now) ? 'mtls' : null;
  }

  /**
   * The only way a TLS flow is relayed undecrypted on the strength of a
   * name: the destination must first prove it (bypass.ts). One that cannot
   * gets what the flow would get without the name: inspected, where its
   * certificate meets `tls.onUpstreamError` like any other, or blocked.
   */
  private async bypassOrElse(run: FlowRun, hello: ClientHelloInfo, replay: Buffer, reason: UndecryptedReason, otherwise: 'inspect' | 'block'): Promise<void> {
    const { dstAddress, dstPort } = run.flow;
    const verdict = await this.bypass.verify({ address: dstAddress, port: dstPort, name: hello.sni, alpn: hello.alpn });
    if (verdict.ok) {
      this.count('bypass.verified');
      this.relayRaw(run, replay, reason, verdict.cached ? 'cache' : 'probe');
      return;
    }
    this.count(`bypass_refused.${verdict.reason}`);
    run.record('tls_bypass_refused', { host: run.host, dst: `${dstAddress}:${dstPort}`, bypass: reason, reason: verdict.reason, detail: verdict.detail });
    if (otherwise === 'block') {
      run.undecrypted = upstreamCertError(verdict.reason);
      this.refuse(run, 'unverified_name');
      return;
    }
    await this.inspect(run, hello, replay);
  }

  /** Relays the TLS flow undecrypted; `verified` says how the name was proven (`none`: no name decided it). */
  private relayRaw(run: FlowRun, replay: Buffer, reason: UndecryptedReason, verified: 'probe' | 'cache' | 'none'): void {
    run.mode = 'bypass';
    run.undecrypted = reason;
    run.record('tls_bypass', { host: run.host, reason, verified });
    this.splice(run, replay, Buffer.alloc(0));
  }

  /**
   * Not TLS: blocked, or relayed raw (server's greeting first, if it spoke)
   * when policy (an allow) or `nonTls` allows. Only the guess is logged.
   */
  private notTls(run: FlowRun, first: Extract<FirstBytes, { kind: 'not_tls' }>, replay: Buffer, decision: 'block' | 'allow' | 'nonTls'): void {
    run.mode = 'non_tls';
    run.undecrypted = 'non-tls';
    const outcome = decision === 'nonTls' ? this.nonTls : decision;
    this.count(`non_tls.${outcome}.${first.guess}`);
    run.record('non_tls', { dst: `${run.flow.dstAddress}:${run.flow.dstPort}`, guess: first.guess, from: first.from, outcome });
    if (outcome === 'block') {
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
    // TLS 1.3 says so with certificate_required (before or after validation finished), TLS 1.2 with handshake_failure.
    const mtls = up.ok
      ? up.demandedClientCertificate()
      : up.error === 'client_certificate_required' || (up.code === HANDSHAKE_FAILURE_CODE && await this.demandsClientCertificate(run, hello));
    if (mtls) {
      this.learnMtls(run);
      up.socket?.destroy();
      run.upstream.destroy();
      refuseWithAlert(run.client, ALERT_HANDSHAKE_FAILURE);
      run.finish('mtls_required');
      return;
    }
    if (!up.ok) {
      const outcome = up.socket && this.onUpstreamError === 'untrusted-ca' ? 'untrusted-ca' : 'block';
      this.count(`upstream_rejected.${up.error}`);
      run.record('tls_upstream_rejected', { host: run.host, reason: up.error, detail: up.detail, outcome });
      if (outcome === 'block') {
        up.socket?.destroy();
        run.upstream.destroy();
        run.undecrypted = upstreamCertError(up.error);
        refuseWithAlert(run.client, TRANSPORT_FAILURES.has(up.error) ? ALERT_INTERNAL_ERROR : ALERT_HANDSHAKE_FAILURE);
        run.finish('upstream_rejected', { reason: up.error });
        return;
      }
      issuer = 'untrusted';
    }
    const upstreamTls = up.socket as tls.TLSSocket;
    const demanded = up.ok ? up.demandedClientCertificate : () => false;
    run.alpn = up.alpn ?? null;
    const leaf = this.mintFor(run, up.ok ? up.leaf : up.chain?.[0], issuer);
    if (!leaf) {
      upstreamTls.destroy();
      run.undecrypted = upstreamCertError('mint_failed');
      refuseWithAlert(run.client, ALERT_INTERNAL_ERROR);
      run.finish('mint_failed');
      return;
    }
    const term = await terminateClientTls(run.client, replay, leaf, run.alpn, this.timeouts.clientHandshakeMs, this.now);
    if (!term.ok) {
      upstreamTls.destroy();
      run.upstream.destroy();
      run.client.destroy();
      if (demanded()) this.learnMtls(run);
      if (issuer === 'company' && isCertificateRejection(term.end)) this.pinFailure(run, term.end.alert);
      // An ECH client that sees our certificate for the outer (public) name takes ECH as rejected without
      // retry configs and retries with a plain ClientHello; a GREASE ECH client just finishes the handshake.
      if (hello.hasEch) this.count('ech_rejected');
      run.undecrypted = hello.hasEch ? 'ech' : 'protocol-error';
      run.finish(issuer === 'company' ? 'client_handshake_failed' : 'client_refused_untrusted_leaf', { clientEnd: term.end });
      return;
    }
    this.relayInspected(run, term.socket, upstreamTls, issuer, demanded);
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

  private relayInspected(run: FlowRun, clientTls: tls.TLSSocket, upstreamTls: tls.TLSSocket, issuer: 'company' | 'untrusted', demanded: () => boolean): void {
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
        // TLS 1.3: the server's certificate_required can arrive after the session was handed over.
        if (demanded() || (r.end === 'server_error' && r.detail === CERTIFICATE_REQUIRED_CODE)) this.learnMtls(run);
        run.finish(r.end, { issuer, bytesFromClient: r.fromClient, bytesFromServer: r.fromServer, detail: r.detail });
      },
    });
  }

  /** A TLS 1.2 handshake_failure: the server may have asked for a client certificate (mtls_scan.ts). */
  private async demandsClientCertificate(run: FlowRun, hello: ClientHelloInfo): Promise<boolean> {
    const demand = await probeClientCertificateDemand({
      host: run.flow.dstAddress, port: run.flow.dstPort, servername: hello.sni ?? undefined, alpn: hello.alpn, trust: this.opts.trust,
      revocation: 'off', timeoutMs: this.timeouts.upstreamHandshakeMs, dial: this.opts.dial, aia: this.opts.aia, fetch: this.opts.fetchFor?.(run.flow) ?? this.opts.fetch,
    });
    return demand !== null;
  }

  /**
   * The server demands a client certificate, which the concentrator cannot
   * present: (user, host) is relayed undecrypted from now on (verified, like
   * every bypass), for tls.pinning.bypassSeconds.
   */
  private learnMtls(run: FlowRun): void {
    this.count('mtls_required');
    run.undecrypted = 'mtls';
    const learned = this.mtls.learn(run.flow.user, run.host, this.now());
    if (learned) run.record('tls_mtls_learned', { host: run.host, ttlSeconds: Math.round(this.mtls.ttlMs / 1000) });
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
