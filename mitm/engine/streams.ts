// The inspection engine's stream adapter: the one place where a flow's
// machine (flow.ts) meets I/O. It owns the client's stream (a net.Socket or
// the TCP stack's Duplex), the upstream socket, the two node:tls sockets and
// the timers; it executes the machine's commands in order and turns what
// happens on the streams into events, stamped with the wall clock. TLS is
// done here by node:tls (client side: terminate.ts; upstream side and its
// validation: mitm/upstream secureUpstream); the machine only decides.

import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { type RelayResult, relay } from '../../netstack';
import { BypassProber, tlsProbe } from '../bypass_probe';
import { LeafContexts } from '../leaf_contexts';
import { refuseWith, startClientTls } from '../terminate';
import {
  type SecureUpstreamFailure, type UpstreamConnection, CERTIFICATE_REQUIRED_CODE, probeClientCertificateDemand, secureUpstream,
} from '../upstream';
import { InspectionCore } from './core';
import type { Command, FlowEvent, FlowTimer, Side, UpstreamTlsResult } from './events';
import type { FlowMachine } from './flow';
import type { EngineClock, InspectedFlow, InspectionEngineOptions } from './types';

/** The process's wall clock and timers; timers do not keep the process alive (the flows' sockets do). */
export const wallClock: EngineClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
};

export class InspectionEngine {
  readonly core: InspectionCore;
  readonly clock: EngineClock;
  readonly prober: BypassProber;
  /** The client side's TLS contexts, one per minted leaf, prepared ahead for first visits. */
  readonly contexts = new LeafContexts();

  constructor(readonly opts: InspectionEngineOptions) {
    this.core = new InspectionCore(opts);
    this.contexts.prepare(this.core.minter('company').keyPem);
    this.clock = opts.clock ?? wallClock;
    const probe = opts.probe ?? tlsProbe({
      trust: opts.trust, revocation: opts.tls?.revocation ?? 'soft', timeoutMs: this.core.timeouts.upstreamHandshakeMs, dial: opts.dial,
      aia: opts.aia, fetch: opts.fetch, ocspCache: opts.ocspCache, now: () => new Date(this.clock.now()),
      onSoftFail: () => this.core.counters.inc('bypass_probe.revocation_soft_fail'),
    });
    this.prober = new BypassProber(probe, this.core.counters);
  }

  /** Counters by reason (status.json, /metrics). */
  get counters(): Record<string, number> {
    return this.core.counters.values;
  }

  /** Takes ownership of both streams. Never throws; every ending is recorded. */
  handle(client: Duplex, upstream: Duplex, flow: InspectedFlow): void {
    new FlowDriver(this, this.core.flow(flow), client, upstream).start();
  }
}

/** One flow's streams, TLS sockets and timers, driven by its machine. */
class FlowDriver {
  private clientTls: tls.TLSSocket | null = null;
  private serverTls: tls.TLSSocket | null = null;
  private readonly timers = new Map<FlowTimer, unknown>();
  private readonly queue: FlowEvent[] = [];
  private running = false;
  private reading = false;

  constructor(private readonly engine: InspectionEngine, private readonly machine: FlowMachine, private readonly client: Duplex, private readonly upstream: Duplex) {}

  start(): void {
    this.running = true;
    try {
      // Half-close must reach the other side (the relay); errors outside the relay are counted, never thrown.
      this.client.allowHalfOpen = true;
      this.upstream.allowHalfOpen = true;
      this.client.on('error', () => this.feed({ type: 'stream_error', side: 'client' }));
      this.upstream.on('error', () => this.feed({ type: 'stream_error', side: 'server' }));
      this.exec(this.machine.start(this.engine.clock.now()));
    } catch (err) {
      this.queue.push(fault(err));
    }
    this.drain();
  }

  /** Events are handled one at a time, in order, also when a command causes one at once. */
  private feed(ev: FlowEvent): void {
    this.queue.push(ev);
    if (!this.running) {
      this.running = true;
      this.drain();
    }
  }

  private drain(): void {
    for (let ev = this.queue.shift(); ev !== undefined; ev = this.queue.shift()) {
      this.exec(this.machine.handle(ev, this.engine.clock.now()));
    }
    this.running = false;
  }

  private exec(commands: Command[]): void {
    for (const c of commands) {
      try {
        this.run(c);
      } catch (err) {
        this.queue.push(fault(err));
      }
    }
  }

  private run(c: Command): void {
    const { engine } = this;
    const flow = this.machine.run.flow;
    switch (c.type) {
      case 'read':
        return c.on ? this.startReading() : this.stopReading();
      case 'arm': {
        this.disarm(c.timer);
        const ms = Math.max(0, c.at - engine.clock.now());
        this.timers.set(c.timer, engine.clock.setTimer(() => {
          this.timers.delete(c.timer);
          this.feed({ type: 'timer', timer: c.timer });
        }, ms));
        return;
      }
      case 'disarm':
        return this.disarm(c.timer);
      case 'record':
        try {
          engine.opts.records.write(flow.user, flow.peer, c.recordType, c.fields);
        } catch {
          engine.core.counters.inc('record_errors');
        }
        return;
      case 'undecrypted':
        try {
          flow.policy?.undecrypted?.(c.reason, c.sni);
        } catch {
          engine.core.counters.inc('policy_hook_errors');
        }
        return;
      case 'probe':
        engine.prober.probe(c.target).then((result) => this.feed({ type: 'probe_done', result }), (err: unknown) => this.feed(fault(err)));
        return;
      case 'start_upstream_tls':
        return this.startUpstreamTls(c.servername, c.alpn);
      case 'scan_client_certificate_demand': {
        const { opts, core } = engine;
        probeClientCertificateDemand({
          host: flow.dstAddress, port: flow.dstPort, servername: c.servername ?? undefined, alpn: c.alpn, trust: opts.trust,
          revocation: 'off', timeoutMs: core.timeouts.upstreamHandshakeMs, dial: opts.dial, aia: opts.aia, fetch: opts.fetchFor?.(flow) ?? opts.fetch,
          now: () => new Date(engine.clock.now()),
        }).then((demand) => this.feed({ type: 'client_certificate_demand', demanded: demand !== null }), (err: unknown) => this.feed(fault(err)));
        return;
      }
      case 'start_client_tls':
        this.clientTls = startClientTls(this.client, c.replay, engine.contexts.for(c.leaf), c.alpn, (result) => this.feed({ type: 'client_tls', result }));
        return;
      case 'write':
        this.side(c.side).write(c.data);
        return;
      case 'refuse':
        return refuseWith(this.client, c.data, c.lingerMs);
      case 'destroy':
        this.stream(c.stream)?.destroy();
        return;
      case 'relay':
        return this.relay(c);
      case 'close_raw':
        return closeRaw(this.side(c.side), c.clean, c.lingerMs);
    }
  }

  private side(side: Side): Duplex {
    return side === 'client' ? this.client : this.upstream;
  }

  private stream(s: Side | 'client_tls' | 'server_tls'): Duplex | null {
    if (s === 'client_tls') return this.clientTls;
    if (s === 'server_tls') return this.serverTls;
    return this.side(s);
  }

  private disarm(timer: FlowTimer): void {
    const t = this.timers.get(timer);
    if (t === undefined) return;
    this.timers.delete(timer);
    this.engine.clock.clearTimer(t);
  }

  private readonly onClientData = (data: Buffer): void => this.feed({ type: 'client_data', data });
  private readonly onClientEnd = (): void => this.feed({ type: 'client_end' });
  private readonly onClientClose = (): void => this.feed({ type: 'client_close' });
  private readonly onServerData = (data: Buffer): void => this.feed({ type: 'server_data', data });
  private readonly onServerEnd = (): void => this.feed({ type: 'server_end' });

  private startReading(): void {
    this.reading = true;
    this.client.on('data', this.onClientData);
    this.client.once('end', this.onClientEnd);
    this.client.once('close', this.onClientClose);
    this.upstream.on('data', this.onServerData);
    this.upstream.once('end', this.onServerEnd);
    // A stream already gone emits nothing more.
    if (this.client.destroyed || this.client.readableEnded) this.feed({ type: 'client_close' });
  }

  private stopReading(): void {
    if (!this.reading) return;
    this.reading = false;
    // pause() before removing the listener: a flowing stream without 'data' listeners drops bytes.
    this.client.pause();
    this.upstream.pause();
    this.client.off('data', this.onClientData);
    this.client.off('end', this.onClientEnd);
    this.client.off('close', this.onClientClose);
    this.upstream.off('data', this.onServerData);
    this.upstream.off('end', this.onServerEnd);
  }

  private startUpstreamTls(servername: string | null, alpn: string[]): void {
    const { opts, core, clock } = this.engine;
    const flow = this.machine.run.flow;
    const softFails: string[] = [];
    secureUpstream(this.upstream, {
      host: flow.dstAddress,
      port: flow.dstPort,
      servername: servername ?? undefined,
      alpn,
      trust: opts.trust,
      revocation: opts.tls?.revocation ?? 'soft',
      timeoutMs: core.timeouts.upstreamHandshakeMs,
      aia: opts.aia,
      fetch: opts.fetchFor?.(flow) ?? opts.fetch,
      ocspCache: opts.ocspCache,
      now: () => new Date(clock.now()),
      onSoftFail: (detail) => softFails.push(detail),
    }).then((up) => {
      this.serverTls = up.socket ?? null;
      // After the hand-over, TLS 1.3's certificate_required can still arrive (secureUpstream then closes the session).
      up.socket?.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === CERTIFICATE_REQUIRED_CODE) this.feed({ type: 'upstream_certificate_required' });
      });
      this.feed({ type: 'upstream_tls', result: upstreamResult(up, softFails) });
    }, (err: unknown) => this.feed(fault(err)));
  }

  private relay(c: Extract<Command, { type: 'relay' }>): void {
    const onEnd = (result: RelayResult): void => this.feed({ type: 'relay_end', result });
    if (c.layer === 'raw') {
      relay(this.client, this.upstream, { onEnd });
      return;
    }
    if (!this.clientTls || !this.serverTls) throw new Error('decrypted relay without both TLS sessions');
    relay(this.clientTls, this.serverTls, {
      tap: c.tap ?? undefined,
      onTapError: () => this.feed({ type: 'relay_tap_error' }),
      onClientData: () => this.feed({ type: 'relay_client_data' }),
      onEnd,
    });
  }
}

function upstreamResult(up: UpstreamConnection | SecureUpstreamFailure, softFails: string[]): UpstreamTlsResult {
  if (up.ok) return { ok: true, softFails, alpn: up.alpn, leaf: up.leaf, certificateRequired: up.demandedClientCertificate() };
  return { ok: false, softFails, alpn: up.alpn ?? null, error: up.error, detail: up.detail, code: up.code, leaf: up.chain?.[0], sessionOpen: up.socket !== undefined };
}

function fault(err: unknown): FlowEvent {
  return { type: 'fault', detail: err instanceof Error ? err.message : String(err) };
}

/**
 * After a clean ending, the raw stream under a TLS socket may still hold the
 * last bytes (close_notify) in its send buffer: end it and let it flush,
 * destroying it only if it does not close by itself. Errors destroy at once.
 */
function closeRaw(stream: Duplex, clean: boolean, lingerMs: number): void {
  if (stream.destroyed) return;
  if (!clean) {
    stream.destroy();
    return;
  }
  stream.end();
  const timer = setTimeout(() => stream.destroy(), lingerMs);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}
