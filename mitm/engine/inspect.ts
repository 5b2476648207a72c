// The inspected path of one flow (flow.ts hands it over once the flow is to
// be decrypted): TLS upstream, offered as the client offered it and
// validated; a leaf minted for what the upstream presented (the company CA,
// or the untrusted CA when 'untrusted-ca' mode shows a refused upstream);
// the client's handshake with that leaf; the decrypted relay. What the
// client is shown when the upstream is refused, or when the server demands
// a client certificate, is decided here.

import type { RelayResult } from '../../netstack';
import { ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR } from '../alerts';
import type { ClientHelloInfo } from '../client_hello';
import { upstreamCertError } from '../flow_policy';
import { type ClientHandshakeEnd, isCertificateRejection } from '../pinning';
import { CERTIFICATE_REQUIRED_CODE, HANDSHAKE_FAILURE_CODE, type UpstreamError } from '../upstream';
import type { InspectionCore, Issuer } from './core';
import type { Command, FlowEvent, UpstreamTlsResult } from './events';
import type { FlowRun } from './flow_run';

/** How long a cleanly finished raw stream under TLS may take to flush and close before it is destroyed. */
export const CLOSE_LINGER_MS = 5_000;

/** What `replay` holds once handed on. */
const EMPTY_REPLAY: Buffer = Buffer.alloc(0);

/**
 * Upstream failures that are not a verdict on the upstream's security but on
 * reaching it: answered with internal_error rather than handshake_failure.
 * With no upstream session there is no certificate to show either, so
 * 'untrusted-ca' mode refuses these (and protocol_too_old) with an alert too.
 */
const TRANSPORT_FAILURES: ReadonlySet<UpstreamError> = new Set(['connect_failed', 'tls_handshake_failed', 'timeout']);

type Step = 'upstream_tls' | 'certificate_scan' | 'client_tls' | 'relaying' | 'done';

/** What the inspected path needs from its flow's machine. */
export interface InspectedFlowHost {
  readonly core: InspectionCore;
  readonly run: FlowRun;
  emit(...c: Command[]): void;
  /** Refuse the client with a fatal alert and end the flow with `result`. */
  refuseClient(alert: number, result: string, extra?: Record<string, unknown>): void;
  end(result: string, extra?: Record<string, unknown>): void;
}

export class InspectedPath {
  private step: Step = 'upstream_tls';
  private upstream: UpstreamTlsResult | null = null;
  private issuer: Issuer = 'company';
  /** The upstream sent certificate_required (TLS 1.3 may send it after the session was handed over). */
  private certificateRequired = false;
  private now = 0;

  /** `replay`: the client's bytes read before the decision, given to the client-side TLS once and then let go. */
  constructor(private readonly host: InspectedFlowHost, private readonly hello: ClientHelloInfo, private replay: Buffer) {}

  start(now: number): void {
    this.now = now;
    this.host.run.mode = 'inspect';
    this.host.emit({ type: 'start_upstream_tls', servername: this.hello.sni, alpn: this.hello.alpn });
  }

  handle(ev: FlowEvent, now: number): void {
    this.now = now;
    if (ev.type === 'upstream_certificate_required') {
      // Only a validated session's demand counts: a refused one shown under the untrusted CA is not learned from.
      if (this.upstream?.ok) this.certificateRequired = true;
      return;
    }
    switch (this.step) {
      case 'upstream_tls':
        if (ev.type === 'upstream_tls') this.upstreamTls(ev.result);
        return;
      case 'certificate_scan':
        if (ev.type === 'client_certificate_demand' && this.upstream) this.afterUpstream(this.upstream, ev.demanded);
        return;
      case 'client_tls':
        if (ev.type === 'client_tls') this.clientTls(ev.result.ok ? null : ev.result.end);
        else if (ev.type === 'timer' && ev.timer === 'client_handshake') {
          this.clientTls({ kind: 'other', detail: `client did not finish the TLS handshake within ${this.host.core.timeouts.clientHandshakeMs} ms` });
        }
        return;
      case 'relaying':
        if (ev.type === 'relay_client_data' && this.issuer === 'company') this.host.core.pinning.recordSuccess(this.host.run.flow.user, this.host.run.host, this.now);
        else if (ev.type === 'relay_end') this.relayEnded(ev.result);
        return;
      case 'done':
        return;
    }
  }

  private refuse(alert: number, result: string, extra?: Record<string, unknown>): void {
    this.step = 'done';
    this.host.refuseClient(alert, result, extra);
  }

  private end(result: string, extra: Record<string, unknown>): void {
    this.step = 'done';
    this.host.end(result, extra);
  }
  private upstreamTls(up: UpstreamTlsResult): void {
    for (const detail of up.softFails) this.host.run.record('tls_revocation_soft_fail', { host: this.host.run.host, detail });
    this.upstream = up;
    if (up.ok) this.certificateRequired ||= up.certificateRequired;
    // TLS 1.3 says so with certificate_required (before or after validation finished), TLS 1.2 with handshake_failure.
    if (!up.ok && up.error !== 'client_certificate_required' && up.code === HANDSHAKE_FAILURE_CODE) {
      const { hello } = this;
      this.step = 'certificate_scan';
      this.host.emit({ type: 'scan_client_certificate_demand', servername: hello.sni, alpn: hello.alpn });
      return;
    }
    this.afterUpstream(up, up.ok ? this.certificateRequired : up.error === 'client_certificate_required');
  }

  private afterUpstream(up: UpstreamTlsResult, mtls: boolean): void {
    const { run } = this.host;
    if (mtls) {
      this.host.core.learnMtls(run, this.now);
      this.host.emit({ type: 'destroy', stream: 'server_tls' }, { type: 'destroy', stream: 'server' });
      this.refuse(ALERT_HANDSHAKE_FAILURE, 'mtls_required');
      return;
    }
    if (!up.ok) {
      const outcome = up.sessionOpen && this.host.core.onUpstreamError === 'untrusted-ca' ? 'untrusted-ca' : 'block';
      this.host.core.counters.inc(`upstream_rejected.${up.error}`);
      run.record('tls_upstream_rejected', { host: run.host, reason: up.error, detail: up.detail, outcome });
      if (outcome === 'block') {
        this.host.emit({ type: 'destroy', stream: 'server_tls' }, { type: 'destroy', stream: 'server' });
        run.undecrypted = upstreamCertError(up.error);
        this.refuse(TRANSPORT_FAILURES.has(up.error) ? ALERT_INTERNAL_ERROR : ALERT_HANDSHAKE_FAILURE, 'upstream_rejected', { reason: up.error });
        return;
      }
      this.issuer = 'untrusted';
    }
    run.alpn = up.alpn;
    const leaf = this.host.core.mintFor(run, up.leaf, this.issuer, this.now);
    if (!leaf) {
      this.host.emit({ type: 'destroy', stream: 'server_tls' });
      run.undecrypted = upstreamCertError('mint_failed');
      this.refuse(ALERT_INTERNAL_ERROR, 'mint_failed');
      return;
    }
    this.step = 'client_tls';
    this.host.emit({ type: 'arm', timer: 'client_handshake', at: this.now + this.host.core.timeouts.clientHandshakeMs }, { type: 'start_client_tls', leaf, alpn: run.alpn, replay: this.replay });
    this.replay = EMPTY_REPLAY;
  }

  /** The client's handshake with us ended: null when it completed. */
  private clientTls(failed: ClientHandshakeEnd | null): void {
    this.host.emit({ type: 'disarm', timer: 'client_handshake' });
    if (failed === null) {
      this.relayInspected();
      return;
    }
    const { run } = this.host;
    const { hello } = this;
    this.host.emit(
      { type: 'destroy', stream: 'client_tls' }, { type: 'destroy', stream: 'server_tls' },
      { type: 'destroy', stream: 'server' }, { type: 'destroy', stream: 'client' },
    );
    if (this.certificateRequired) this.host.core.learnMtls(run, this.now);
    if (this.issuer === 'company' && isCertificateRejection(failed)) this.host.core.pinFailure(run, failed.alert, this.now);
    // An ECH client that sees our certificate for the outer (public) name takes ECH as rejected without
    // retry configs and retries with a plain ClientHello; a GREASE ECH client just finishes the handshake.
    if (hello.hasEch) this.host.core.counters.inc('ech_rejected');
    run.undecrypted = hello.hasEch ? 'ech' : 'protocol-error';
    this.end(this.issuer === 'company' ? 'client_handshake_failed' : 'client_refused_untrusted_leaf', { clientEnd: failed });
  }

  private relayInspected(): void {
    const { run } = this.host;
    let tap = null;
    try {
      tap = this.host.core.httpLogger?.(run.flow, run.alpn, { sni: run.sni }) ?? null;
    } catch {
      this.host.core.counters.inc('http_logger_errors');
    }
    this.step = 'relaying';
    this.host.emit({ type: 'relay', layer: 'tls', tap });
  }

  private relayEnded(r: RelayResult): void {
    const clean = r.end === 'closed';
    this.host.emit({ type: 'close_raw', side: 'client', clean, lingerMs: CLOSE_LINGER_MS }, { type: 'close_raw', side: 'server', clean, lingerMs: CLOSE_LINGER_MS });
    // TLS 1.3: the server's certificate_required can arrive after the session was handed over.
    if (this.certificateRequired || (r.end === 'server_error' && r.detail === CERTIFICATE_REQUIRED_CODE)) this.host.core.learnMtls(this.host.run, this.now);
    this.end(r.end, { issuer: this.issuer, bytesFromClient: r.fromClient, bytesFromServer: r.fromServer, detail: r.detail });
  }
}
