// The inspection engine: one call per port-443 flow that the TCP stack has
// terminated, with the upstream TCP connection already open. It reads the
// ClientHello, decides (policy hook, learned pins), validates the upstream
// strictly, and then either relays decrypted bytes under a minted leaf,
// splices raw bytes, or refuses, and writes one record per ending.

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { LoadedCa } from './ca';
import { ClientHelloInfo, ClientHelloReader, ClientHelloResult } from './client_hello';
import { LeafMinter, MintedLeaf } from './mint';
import { DEFAULT_SILENT_CLOSE_MS, PinningTracker, isCertificateRejection } from './pinning';
import { RelayResult, RelayTap, closeRaw, relay } from './relay';
import { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, refuseWithAlert, terminateClientTls } from './terminate';
import { type AiaFetcher, type HttpFetcher, type OcspCache, type RevocationMode, type TrustStore, type UpstreamError, secureUpstream } from './upstream';

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
/** What to do with a stream on an inspect port that is not TLS. */
export type NonTlsAction = 'relay' | 'close';

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
    /** Bypass hosts learned as pinned (default true); false keeps inspecting (and failing) them. */
    allowBypass?: boolean;
    /** See pinning.ts 'closed_silently'. */
    silentCloseMs?: number;
  };
  records: RecordSink;
  httpLogger?: HttpLoggerFactory;
  /** Policy hook, consulted once the ClientHello is read; default 'inspect'. */
  decide?: (flow: InspectedFlow, hello: ClientHelloInfo) => FlowDecision;
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

type Mode = 'inspect' | 'bypass' | 'non_tls' | 'refused';

/**
 * Upstream failures that are not a verdict on the upstream's security but on
 * reaching it: answered with internal_error rather than handshake_failure.
 * With no upstream session there is no certificate to show either, so
 * 'untrusted-ca' mode refuses these (and protocol_too_old) with an alert too.
 */
const TRANSPORT_FAILURES: ReadonlySet<UpstreamError> = new Set(['connect_failed', 'tls_handshake_failed', 'timeout']);

/** One flow's bookkeeping: its records and its single ending. */
class FlowRun {
  host: string;
  sni: string | null = null;
  alpn: string | null = null;
  mode: Mode = 'refused';
  private ended = false;

  constructor(readonly flow: InspectedFlow, readonly client: Duplex, readonly upstream: Socket, private readonly engine: InspectionEngine) {
    this.host = flow.dstAddress;
  }

  record(type: string, fields: Record<string, unknown> = {}): void {
    this.engine.record(this.flow, type, fields);
  }

  /** Writes the flow's `flow_end` record once. */
  finish(result: string, extra: Record<string, unknown> = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.engine.count(`end.${this.mode}.${result}`);
    this.record('flow_end', {
      mode: this.mode, result, host: this.host, sni: this.sni, alpn: this.alpn,
      dst: `${this.flow.dstAddress}:${this.flow.dstPort}`, client: `${this.flow.clientAddress}:${this.flow.clientPort}`,
      durationMs: this.engine.now() - this.flow.startedAt, ...extra,
    });
  }

  /** Closes both sides at once and records why. */
  abort(result: string, extra: Record<string, unknown> = {}): void {
    this.client.destroy();
    this.upstream.destroy();
    this.finish(result, extra);
  }
}

export class InspectionEngine {
  readonly counters: Record<string, number> = {};
  readonly pinning: PinningTracker;
  readonly now: () => number;
  private readonly minter: LeafMinter;
  private readonly untrustedMinter: LeafMinter;
  private readonly onUpstreamError: OnUpstreamError;
  private readonly revocation: RevocationMode;
  private readonly bypassPinned: boolean;
  private readonly silentCloseMs: number;
  private readonly timeouts: Required<NonNullable<InspectionEngineOptions['timeouts']>>;

  constructor(private readonly opts: InspectionEngineOptions) {
    this.now = opts.now ?? Date.now;
    this.minter = opts.minter ?? new LeafMinter(opts.ca);
    this.untrustedMinter = opts.untrustedMinter ?? new LeafMinter(opts.untrustedCa);
    if (opts.ca.fingerprint === opts.untrustedCa.fingerprint) throw new Error('the untrusted CA must differ from the company CA');
    this.onUpstreamError = opts.tls?.onUpstreamError ?? 'block';
    this.revocation = opts.tls?.revocation ?? 'soft';
    this.pinning = opts.pinning?.tracker ?? new PinningTracker();
    this.bypassPinned = opts.pinning?.allowBypass ?? true;
    this.silentCloseMs = opts.pinning?.silentCloseMs ?? DEFAULT_SILENT_CLOSE_MS;
    this.timeouts = {
      clientHelloMs: opts.timeouts?.clientHelloMs ?? DEFAULT_CLIENT_HELLO_TIMEOUT_MS,
      upstreamHandshakeMs: opts.timeouts?.upstreamHandshakeMs ?? DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS,
      clientHandshakeMs: opts.timeouts?.clientHandshakeMs ?? DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS,
    };
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
    const verdict = await readClientHello(run.client, reader, this.timeouts.clientHelloMs);
    const replay = reader.buffered();
    if (verdict.kind === 'not_tls' && (this.opts.nonTls ?? 'relay') === 'relay') {
      run.mode = 'non_tls';
      run.record('non_tls', { reason: verdict.reason, host: run.host });
      this.splice(run, replay);
      return;
    }
    if (verdict.kind !== 'done') {
      this.count(`client_hello.${verdict.reason}`);
      run.abort('client_hello_failed', { reason: verdict.reason, detail: verdict.detail });
      return;
    }
    const hello = verdict.hello;
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
    const pinned = decision === 'inspect' && this.bypassPinned && this.pinning.isPinned(run.flow.user, run.host, this.now());
    if (decision === 'bypass' || pinned) {
      run.mode = 'bypass';
      run.record('tls_bypass', { host: run.host, reason: pinned ? 'pinned' : 'policy' });
      this.splice(run, replay);
      return;
    }
    await this.inspect(run, hello, replay);
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
      if (issuer === 'company' && isCertificateRejection(term.end, this.silentCloseMs)) this.pinFailure(run, term.end.kind);
      run.finish(issuer === 'company' ? 'client_handshake_failed' : 'client_refused_untrusted_leaf', { clientEnd: term.end });
      return;
    }
    this.relayInspected(run, term.socket, term.handshakeAt, upstreamTls, issuer);
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

  private relayInspected(run: FlowRun, clientTls: tls.TLSSocket, handshakeAt: number, upstreamTls: tls.TLSSocket, issuer: 'company' | 'untrusted'): void {
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
        const silentAfter = this.now() - handshakeAt;
        if (issuer === 'company' && r.fromClient === 0 && r.firstEnd === 'client'
          && isCertificateRejection({ kind: 'closed_silently', afterMs: silentAfter }, this.silentCloseMs)) {
          this.pinFailure(run, 'closed_silently');
        }
        run.finish(r.end, { issuer, bytesFromClient: r.fromClient, bytesFromServer: r.fromServer, detail: r.detail });
      },
    });
  }

  private pinFailure(run: FlowRun, how: string): void {
    const { user } = run.flow;
    const outcome = this.pinning.recordFailure(user, run.host, this.now());
    this.count('client_rejected_certificate');
    run.record('tls_client_rejected', { host: run.host, how, failures: outcome.failures });
    if (outcome.flipped) {
      this.count('pinned');
      run.record('tls_pinned', { host: run.host, failures: outcome.failures, bypass: this.bypassPinned });
    }
  }

  /** Raw relay: what was read is replayed to the upstream first, then bytes flow untouched. */
  private splice(run: FlowRun, replay: Buffer): void {
    if (replay.length > 0) run.upstream.write(replay);
    relay(run.client, run.upstream, {
      onEnd: (r) => run.finish(r.end, { bytesFromClient: r.fromClient + replay.length, bytesFromServer: r.fromServer, detail: r.detail }),
    });
  }
}

type HelloVerdict = ClientHelloResult | { kind: 'closed' | 'timeout'; reason: string; detail: string };

/** Feeds the client's first bytes to the reader until it decides, the stream ends, or the deadline passes. */
function readClientHello(client: Duplex, reader: ClientHelloReader, timeoutMs: number): Promise<Exclude<HelloVerdict, { kind: 'need_more' }>> {
  return new Promise((resolve) => {
    const done = (v: HelloVerdict): void => {
      if (v.kind === 'need_more') return;
      // pause() before removing the listener: a flowing stream without 'data' listeners drops bytes.
      client.pause();
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('close', onClose);
      clearTimeout(timer);
      resolve(v);
    };
    const onData = (chunk: Buffer): void => done(reader.push(chunk));
    const onEnd = (): void => done(reader.end());
    const onClose = (): void => done({ kind: 'closed', reason: 'client_closed', detail: `client closed after ${reader.bufferedBytes} bytes, before a ClientHello` });
    const timer = setTimeout(() => done({ kind: 'timeout', reason: 'client_hello_timeout', detail: `no complete ClientHello within ${timeoutMs} ms (${reader.bufferedBytes} bytes read)` }), timeoutMs);
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('close', onClose);
    // A stream already gone emits nothing more.
    if (client.destroyed || client.readableEnded) onClose();
  });
}
