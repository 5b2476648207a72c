// The inspection engine's core, without I/O: the state every flow shares
// (leaf minters, learned pins and mutual-TLS hosts, the bypass gate's
// verdict cache, counters) and the settings the flows decide by. Each flow
// is a FlowMachine (flow.ts) fed events and answering commands (events.ts);
// the stream adapter (streams.ts) runs one per flow.

import { Counters } from '../../netstack';
import { BypassVerifier } from '../bypass';
import { MtlsHosts } from '../exemptions';
import type { UndecryptedReason } from '../flow_policy';
import { LeafMinter, MintedLeaf, UpstreamLeaf } from '../mint';
import { PinningTracker, alertName } from '../pinning';
import { FlowMachine } from './flow';
import type { FlowRun } from './flow_run';
import {
  DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS,
  type HttpLoggerFactory, type InspectedFlow, type InspectionCoreOptions, type NonTlsAction, type OnUpstreamError, type PinApprovals, type PinningMode,
} from './types';

export type Issuer = 'company' | 'untrusted';

export class InspectionCore {
  readonly counters = new Counters();
  readonly pinning: PinningTracker;
  readonly mtls: MtlsHosts;
  readonly bypass: BypassVerifier;
  readonly onUpstreamError: OnUpstreamError;
  readonly pinningMode: PinningMode;
  readonly nonTls: NonTlsAction;
  readonly timeouts: Readonly<Required<NonNullable<InspectionCoreOptions['timeouts']>>>;
  readonly httpLogger: HttpLoggerFactory | undefined;
  private readonly minters: Record<Issuer, LeafMinter>;
  private readonly approvals: PinApprovals | undefined;

  constructor(opts: InspectionCoreOptions) {
    if (opts.ca.fingerprint === opts.untrustedCa.fingerprint) throw new Error('the untrusted CA must differ from the company CA');
    this.minters = { company: opts.minter ?? new LeafMinter(opts.ca), untrusted: opts.untrustedMinter ?? new LeafMinter(opts.untrustedCa) };
    this.onUpstreamError = opts.tls?.onUpstreamError ?? 'block';
    this.pinning = opts.pinning?.tracker ?? new PinningTracker();
    this.pinningMode = opts.pinning?.mode ?? 'learn';
    this.approvals = opts.pinning?.approvals;
    this.mtls = opts.mtls ?? new MtlsHosts(this.pinning.ttlMs);
    this.bypass = opts.bypass ?? new BypassVerifier();
    this.nonTls = opts.nonTls ?? 'block';
    this.httpLogger = opts.httpLogger;
    this.timeouts = {
      clientHelloMs: opts.timeouts?.clientHelloMs ?? DEFAULT_CLIENT_HELLO_TIMEOUT_MS,
      upstreamHandshakeMs: opts.timeouts?.upstreamHandshakeMs ?? DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS,
      clientHandshakeMs: opts.timeouts?.clientHandshakeMs ?? DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS,
    };
  }

  /** The leaf minter for leaves under `issuer`'s CA. */
  minter(issuer: Issuer): LeafMinter {
    return this.minters[issuer];
  }

  /** A new flow's machine; call its start(now) first. */
  flow(flow: InspectedFlow): FlowMachine {
    return new FlowMachine(this, flow);
  }

  /** A learned or approved exemption of (user, host) from inspection, under the pinning mode; mTLS hosts in every mode. */
  exemption(user: string, host: string, now: number): UndecryptedReason | null {
    if (this.pinningMode !== 'off') {
      if (this.approvals?.isApproved(user, host)) return 'pinned-learned';
      if (this.pinningMode === 'learn' && this.pinning.isPinned(user, host, now)) return 'pinned-learned';
    }
    return this.mtls.has(user, host, now) ? 'mtls' : null;
  }

  /**
   * A leaf mirroring the upstream's names (its leaf certificate when one was
   * seen), else naming what the client asked for; null, recorded, when none
   * can be minted.
   */
  mintFor(run: FlowRun, upstreamLeaf: UpstreamLeaf | undefined, issuer: Issuer, now: number): MintedLeaf | null {
    const minter = this.minters[issuer];
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

  /**
   * The server demands a client certificate, which the concentrator cannot
   * present: (user, host) is relayed undecrypted from now on (verified, like
   * every bypass), for tls.pinning.bypassSeconds.
   */
  learnMtls(run: FlowRun, now: number): void {
    this.counters.inc('mtls_required');
    run.undecrypted = 'mtls';
    if (this.mtls.learn(run.flow.user, run.host, now)) run.record('tls_mtls_learned', { host: run.host, ttlSeconds: Math.round(this.mtls.ttlMs / 1000) });
  }

  /** The client refused our certificate with an alert (pinning.ts): evidence, learned unless the mode is off. */
  pinFailure(run: FlowRun, alert: number, now: number): void {
    this.counters.inc('client_rejected_certificate');
    if (this.pinningMode === 'off') {
      run.record('tls_client_rejected', { host: run.host, alert: alertName(alert), learned: false });
      return;
    }
    const outcome = this.pinning.recordFailure(run.flow.user, run.host, now);
    run.record('tls_client_rejected', { host: run.host, alert: alertName(alert), failures: outcome.failures });
    if (outcome.flipped) {
      this.counters.inc('pinned');
      run.record('tls_pinned', { host: run.host, failures: outcome.failures, mode: this.pinningMode, bypass: this.pinningMode === 'learn' });
    }
  }
}
