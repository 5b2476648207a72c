// One flow through the inspection engine, as a machine fed events and
// answering commands (events.ts). It reads the ClientHello (or learns the
// flow is not TLS), asks the flow's policy hook (flow_policy.ts) what to do,
// and then either has the flow inspected (upstream TLS, validated; a minted
// leaf for the client; decrypted relay), relayed raw (a name-based bypass
// only once the destination proved the name: bypass.ts), or refused, with
// one record per ending. A flow that is not TLS is blocked unless policy or
// `nonTls` allows it. A flow that ends undecrypted carries its reason from
// the fixed list (flow_policy.ts).

import { ALERT_ACCESS_DENIED, REFUSAL_LINGER_MS, alertRecord } from '../alerts';
import type { BypassTarget, BypassVerdict } from '../bypass';
import { type ClientHelloInfo, ClientHelloReader } from '../client_hello';
import { type NonTlsDecision, type TlsDecision, type UndecryptedReason, upstreamCertError } from '../flow_policy';
import type { InspectionCore } from './core';
import type { Command, FlowEvent, FlowTimer } from './events';
import { type FirstBytes, type FirstBytesStep, FirstBytesReader, GUESS_WAIT_MS } from './first_bytes';
import { FlowRun } from './flow_run';
import { type InspectedFlowHost, InspectedPath } from './inspect';
import type { InspectedFlow } from './types';

const EMPTY: Buffer = Buffer.alloc(0);

/** Reading the first bytes; waiting for the bypass gate's probe; relaying raw; on the inspected path (inspect.ts); ended. */
type Phase = 'reading' | 'probing' | 'relaying' | 'inspecting' | 'done';

/** What a verified bypass falls back to when the destination cannot prove the name. */
interface PendingBypass {
  target: BypassTarget;
  reason: UndecryptedReason;
  otherwise: 'inspect' | 'block';
}

export class FlowMachine implements InspectedFlowHost {
  readonly run: FlowRun;
  private phase: Phase = 'reading';
  private now = 0;
  private out: Command[] = [];
  /** Until the decision; then let go with what it buffered, as are the bytes handed on (the flow may last hours). */
  private first: FirstBytesReader | null = new FirstBytesReader(new ClientHelloReader());
  private hello: ClientHelloInfo | null = null;
  /** The client's bytes read before the decision, until they are handed to whoever takes the flow (after a probe, maybe). */
  private replay: Buffer = EMPTY;
  /** Raw relay only: bytes read before it, counted into the flow's totals: the client's (replayed) and the server's greeting. */
  private readBefore = { fromClient: 0, fromServer: 0 };
  private bypass: PendingBypass | null = null;
  private inspected: InspectedPath | null = null;

  constructor(readonly core: InspectionCore, flow: InspectedFlow) {
    this.run = new FlowRun(flow, core.counters, (c) => this.out.push(c));
  }


  /** The flow begins: read both sides until the ClientHello (or evidence it is not TLS), within the deadline. */
  start(now: number): Command[] {
    this.now = now;
    this.core.counters.inc('flows');
    this.out.push({ type: 'read', on: true }, this.arm('client_hello', this.core.timeouts.clientHelloMs));
    return this.take();
  }

  /** Never throws: a fault ends this flow (internal_error), never the process. */
  handle(ev: FlowEvent, now: number): Command[] {
    this.now = now;
    try {
      this.dispatch(ev);
    } catch (err) {
      this.fault(err instanceof Error ? err.message : String(err));
    }
    return this.take();
  }

  /** Both sides are closed and the flow ends as internal_error (once). */
  private fault(detail: string): void {
    this.core.counters.inc('internal_errors');
    this.phase = 'done';
    this.run.abort('internal_error', this.now, { detail });
  }

  private take(): Command[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private arm(timer: FlowTimer, ms: number): Command {
    return { type: 'arm', timer, at: this.now + ms };
  }

  private dispatch(ev: FlowEvent): void {
    switch (ev.type) {
      case 'stream_error':
        this.core.counters.inc(ev.side === 'client' ? 'client_stream_errors' : 'upstream_stream_errors');
        return;
      case 'relay_tap_error':
        this.core.counters.inc('http_logger_errors');
        return;
      case 'fault':
        this.fault(ev.detail);
        return;
    }
    switch (this.phase) {
      case 'reading':
        return this.reading(ev);
      case 'probing':
        if (ev.type === 'probe_done' && this.bypass) {
          const { target } = this.bypass;
          if (!this.core.bypass.cached(target, this.now)) this.core.bypass.store(target, ev.result, this.now);
          this.bypassVerdict({ ...ev.result, cached: false });
        }
        return;
      case 'inspecting':
        this.inspected?.handle(ev, this.now);
        return;
      case 'relaying':
        if (ev.type === 'relay_end') {
          const bytesFromClient = ev.result.fromClient + this.readBefore.fromClient;
          this.end(ev.result.end, { bytesFromClient, bytesFromServer: ev.result.fromServer + this.readBefore.fromServer, detail: ev.result.detail });
        }
        return;
      case 'done':
        return;
    }
  }

  // ---- the first bytes ----

  private reading(ev: FlowEvent): void {
    const { first } = this;
    if (first === null) return;
    switch (ev.type) {
      case 'client_data':
        return this.firstBytes(first, first.clientData(ev.data));
      case 'client_end':
        return this.firstBytes(first, first.clientEnd());
      case 'client_close':
        return this.firstBytes(first, first.clientClose());
      case 'server_data':
        return this.firstBytes(first, first.serverData(ev.data));
      case 'server_end':
        return this.firstBytes(first, first.serverEnd());
      case 'timer':
        if (ev.timer === 'client_hello') this.firstBytes(first, first.deadline(this.core.timeouts.clientHelloMs));
        else if (ev.timer === 'guess') this.firstBytes(first, first.guessWaitOver());
        return;
    }
  }

  private firstBytes(first: FirstBytesReader, step: FirstBytesStep): void {
    if (step === null) return;
    if (step === 'wait_guess') {
      this.out.push(this.arm('guess', GUESS_WAIT_MS));
      return;
    }
    this.out.push({ type: 'read', on: false }, { type: 'disarm', timer: 'client_hello' }, { type: 'disarm', timer: 'guess' });
    this.replay = first.reader.buffered();
    this.first = null;
    this.decide(step);
  }

  private decide(first: FirstBytes): void {
    const { run } = this;
    const hook = run.flow.policy;
    if (first.kind === 'not_tls') {
      this.notTls(first, hook?.nonTls() ?? 'nonTls');
      return;
    }
    if (first.kind !== 'done') {
      this.core.counters.inc(`client_hello.${first.reason}`);
      run.undecrypted = 'protocol-error';
      this.phase = 'done';
      run.abort('client_hello_failed', this.now, { reason: first.reason, detail: first.detail });
      return;
    }
    const hello = first.hello;
    this.hello = hello;
    run.sni = hello.sni;
    run.host = hello.sni ?? run.flow.dstAddress;
    if (hello.hasEch) this.core.counters.inc('ech_client_hello');
    const decision: TlsDecision = hook?.tls(hello) ?? { action: 'inspect' };
    if (decision.action === 'block') {
      this.refuse('policy');
      return;
    }
    if (decision.action === 'bypass') {
      if (decision.verify) this.verifyBypass(decision.reason, decision.unverified);
      else this.relayRaw(decision.reason, 'none');
      return;
    }
    const exempt = this.core.exemption(run.flow.user, run.host, this.now);
    if (exempt !== null) this.verifyBypass(exempt, 'inspect');
    else this.inspect();
  }

  /** Refused by policy, or by a name the destination could not prove: access_denied (RFC 8446 §6.2). */
  private refuse(reason: string): void {
    this.run.record('tls_blocked', { host: this.run.host, reason });
    this.out.push({ type: 'destroy', stream: 'server' });
    this.refuseClient(ALERT_ACCESS_DENIED, 'blocked_by_policy');
  }

  emit(...c: Command[]): void {
    this.out.push(...c);
  }

  /** The client gets a fatal alert in clear; the flow ends with `result`. */
  refuseClient(alert: number, result: string, extra: Record<string, unknown> = {}): void {
    this.out.push({ type: 'refuse', data: alertRecord(alert), lingerMs: REFUSAL_LINGER_MS });
    this.end(result, extra);
  }

  end(result: string, extra: Record<string, unknown> = {}): void {
    this.phase = 'done';
    this.run.finish(result, this.now, extra);
  }

  // ---- undecrypted: verified bypass, raw relay, traffic that is not TLS ----

  /**
   * The only way a TLS flow is relayed undecrypted on the strength of a
   * name: the destination must first prove it (bypass.ts). One that cannot
   * gets what the flow would get without the name: inspected, where its
   * certificate meets `tls.onUpstreamError` like any other, or blocked.
   */
  private verifyBypass(reason: UndecryptedReason, otherwise: 'inspect' | 'block'): void {
    const hello = this.hello as ClientHelloInfo;
    const { dstAddress, dstPort } = this.run.flow;
    const target: BypassTarget = { address: dstAddress, port: dstPort, name: hello.sni, alpn: hello.alpn };
    this.bypass = { target, reason, otherwise };
    const cached = this.core.bypass.cached(target, this.now);
    if (cached) {
      this.bypassVerdict({ ...cached, cached: true });
      return;
    }
    this.phase = 'probing';
    this.out.push({ type: 'probe', target });
  }

  private bypassVerdict(verdict: BypassVerdict): void {
    const { reason, otherwise, target } = this.bypass as PendingBypass;
    if (verdict.ok) {
      this.core.counters.inc('bypass.verified');
      this.relayRaw(reason, verdict.cached ? 'cache' : 'probe');
      return;
    }
    this.core.counters.inc(`bypass_refused.${verdict.reason}`);
    this.run.record('tls_bypass_refused', {
      host: this.run.host, dst: `${target.address}:${target.port}`, bypass: reason, reason: verdict.reason, detail: verdict.detail,
    });
    if (otherwise === 'block') {
      this.run.undecrypted = upstreamCertError(verdict.reason);
      this.refuse('unverified_name');
      return;
    }
    this.inspect();
  }

  /** Relays the TLS flow undecrypted; `verified` says how the name was proven (`none`: no name decided it). */
  private relayRaw(reason: UndecryptedReason, verified: 'probe' | 'cache' | 'none'): void {
    this.run.mode = 'bypass';
    this.run.undecrypted = reason;
    this.run.record('tls_bypass', { host: this.run.host, reason, verified });
    this.splice(EMPTY);
  }

  /**
   * Not TLS: blocked, or relayed raw (server's greeting first, if it spoke)
   * when policy (an allow) or `nonTls` allows. Only the guess is logged.
   */
  private notTls(first: Extract<FirstBytes, { kind: 'not_tls' }>, decision: NonTlsDecision): void {
    const { run } = this;
    run.mode = 'non_tls';
    run.undecrypted = 'non-tls';
    const outcome = decision === 'nonTls' ? this.core.nonTls : decision;
    this.core.counters.inc(`non_tls.${outcome}.${first.guess}`);
    run.record('non_tls', { dst: `${run.flow.dstAddress}:${run.flow.dstPort}`, guess: first.guess, from: first.from, outcome });
    if (outcome === 'block') {
      this.phase = 'done';
      run.abort('non_tls_blocked', this.now, { guess: first.guess });
      return;
    }
    this.splice(first.serverBytes);
  }

  /** Raw relay: the client's bytes read so far go upstream first, the server's (if it spoke first) to the client, then bytes flow untouched. */
  private splice(fromServer: Buffer): void {
    if (this.replay.length > 0) this.out.push({ type: 'write', side: 'server', data: this.replay });
    if (fromServer.length > 0) this.out.push({ type: 'write', side: 'client', data: fromServer });
    this.readBefore = { fromClient: this.replay.length, fromServer: fromServer.length };
    this.replay = EMPTY;
    this.phase = 'relaying';
    this.out.push({ type: 'relay', layer: 'raw', tap: null });
  }

  /** The flow is to be decrypted: the inspected path takes its events from here on. */
  private inspect(): void {
    this.phase = 'inspecting';
    this.inspected = new InspectedPath(this, this.hello as ClientHelloInfo, this.replay);
    this.replay = EMPTY;
    this.inspected.start(this.now);
  }
}
