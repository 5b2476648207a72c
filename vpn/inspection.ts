// TLS inspection wired into the concentrator: the engine, its CA, trust,
// pinning and records. Which flows it takes is policy's call
// (vpn/flow_policy): their upstream TCP connection is opened first (so the
// client's SYN is answered only when the origin answered), then the engine
// takes both streams. Records go to each user's log.
import type { Config } from './config';
import type { Logger } from './process';
import { PinnedSync } from './pinned';
import { connectUpstream } from '../netstack';
import { AiaFetcher, createHttpLogger, ensureCa, InspectionEngine, LeafMinter, PinningTracker, TrustStore, type EnsuredCa, type HttpFetcher, type HttpLoggerFactory } from '../mitm';
import { UserLog } from './logs';

export class Inspection {
  readonly userLog: UserLog;
  readonly engine: InspectionEngine;
  readonly pinning: PinningTracker;
  /** The company CA's leaf minter and its cache (sightline_certificate_cache_* metrics). */
  readonly minter: LeafMinter;
  private readonly pinnedSync: PinnedSync;
  private readonly ownsLog: boolean;
  /** The one way this concentrator opens TCP toward a destination: flows and bypass probes alike. */
  readonly dial = connectUpstream;

  constructor(
    dataDir: string,
    config: Config,
    readonly ca: EnsuredCa,
    log: Logger,
    /** The egress guard's fetchers for AIA and OCSP: per user's flow, and for fetches shared by all. */
    egressFetch?: { forFlow: (user: string, peer: string) => HttpFetcher; shared: HttpFetcher },
    /** The concentrator's per-user log (vpn/logs); one of its own, closed with it, when not given. */
    userLog?: UserLog,
  ) {
    this.userLog = userLog ?? new UserLog({ dataDir });
    this.ownsLog = userLog === undefined;
    const trust = config.tls.upstreamCaFile ? TrustStore.fromPemFile(config.tls.upstreamCaFile) : TrustStore.system();
    const p = config.tls.pinning;
    this.pinning = new PinningTracker({ threshold: p.threshold, windowMs: p.windowSeconds * 1000, ttlMs: p.bypassSeconds * 1000 });
    this.pinnedSync = new PinnedSync(dataDir, this.pinning, log);
    this.minter = new LeafMinter(ca.ca);
    this.engine = new InspectionEngine({
      ca: ca.ca,
      minter: this.minter,
      untrustedCa: ca.untrusted,
      trust,
      tls: { onUpstreamError: config.tls.onUpstreamError, revocation: config.tls.revocation },
      pinning: { tracker: this.pinning, mode: p.mode, approvals: this.pinnedSync.approvals },
      dial: this.dial,
      nonTls: config.tls.nonTls,
      records: this.userLog,
      // One issuer cache for every flow; each fetch goes through the fetcher of the flow that needs it.
      aia: new AiaFetcher(),
      fetch: egressFetch?.shared,
      fetchFor: egressFetch && ((flow) => egressFetch.forFlow(flow.user, flow.peer)),
      httpLogger: httpRecords(this.userLog),
    });
  }

  /** Saves the pinned hosts and flushes every user's log (when it is this object's own). */
  async close(): Promise<void> {
    this.pinnedSync.close();
    if (this.ownsLog) await this.userLog.close();
  }
}

/** `http` records of inspected flows, in the flow's user's log. */
export function httpRecords(userLog: UserLog): HttpLoggerFactory {
  return (flow, alpn, ctx) =>
    createHttpLogger({ alpn, sniHost: ctx.sni, now: () => performance.now(), emit: (r) => userLog.write(flow.user, flow.peer, 'http', { ...r, rule: flow.rule, action: flow.action }) });
}

export function loadInspectionCa(dataDir: string, passphrase: string | undefined): EnsuredCa {
  return ensureCa(dataDir, { passphrase });
}
