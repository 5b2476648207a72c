// TLS inspection wired into the concentrator: TCP flows to tls.inspectPorts
// get their upstream TCP connection opened first (so the client's SYN is
// answered only when the origin answered), then the inspection engine takes
// both streams. Records go to each user's log.
import { join } from 'node:path';
import type { Config } from './config';
import type { Logger } from './log';
import { connectUpstream as connectTcp, type FlowRecord, type TcpFlowHandler, type TcpFlowInfo } from '../netstack';
import { AiaFetcher, createHttpLogger, ensureCa, InspectionEngine, PinningTracker, TrustStore, UserLog, type EnsuredCa, type HttpFetcher } from '../mitm';

const CONNECT_TIMEOUT_MS = 10_000;
const PINNING_SAVE_MS = 10_000;

export class Inspection {
  readonly userLog: UserLog;
  readonly engine: InspectionEngine;
  readonly pinning: PinningTracker;
  private readonly inspectPorts: Set<number>;
  private readonly pinningFile: string;
  private readonly saveTimer: NodeJS.Timeout;

  constructor(
    dataDir: string,
    config: Config,
    readonly ca: EnsuredCa,
    private readonly log: Logger,
    /** The egress guard's fetchers for AIA and OCSP: per user's flow, and for fetches shared by all. */
    egressFetch?: { forFlow: (user: string, peer: string) => HttpFetcher; shared: HttpFetcher },
  ) {
    this.userLog = new UserLog({ dataDir });
    this.inspectPorts = new Set(config.tls.inspectPorts);
    const trust = config.tls.upstreamCaFile ? TrustStore.fromPemFile(config.tls.upstreamCaFile) : TrustStore.system();
    const p = config.tls.pinning;
    this.pinning = new PinningTracker({ threshold: p.threshold, windowMs: p.windowSeconds * 1000, ttlMs: p.bypassSeconds * 1000 });
    this.pinningFile = join(dataDir, 'pinned.json');
    try {
      this.pinning.load(this.pinningFile, Date.now());
    } catch (err) {
      log.warn({ err: (err as Error).message, file: this.pinningFile }, 'cannot load the pinned-host list; starting empty');
    }
    this.engine = new InspectionEngine({
      ca: ca.ca,
      untrustedCa: ca.untrusted,
      trust,
      tls: { onUpstreamError: config.tls.onUpstreamError, revocation: config.tls.revocation },
      pinning: { tracker: this.pinning, allowBypass: p.bypass },
      records: this.userLog,
      // One issuer cache for every flow; each fetch goes through the fetcher of the flow that needs it.
      aia: new AiaFetcher(),
      fetch: egressFetch?.shared,
      fetchFor: egressFetch && ((flow) => egressFetch.forFlow(flow.user, flow.peer)),
      httpLogger: (flow, alpn, ctx) =>
        createHttpLogger({ alpn, sniHost: ctx.sni, now: () => performance.now(), emit: (r) => this.userLog.write(flow.user, flow.peer, 'http', { ...r }) }),
    });
    this.saveTimer = setInterval(() => this.savePinning(), PINNING_SAVE_MS);
  }

  /** The handler for flows this engine inspects, or undefined for the default path. */
  handlerFor(flow: TcpFlowInfo): TcpFlowHandler | undefined {
    if (flow.local || !this.inspectPorts.has(flow.dstPort)) return undefined;
    return (f) =>
      connectTcp(f.dst.toString(), f.dstPort, CONNECT_TIMEOUT_MS).then((sock) => ({
        attach: (client) =>
          this.engine.handle(client, sock, {
            user: f.owner.user,
            peer: f.owner.id,
            clientAddress: f.client.toString(),
            clientPort: f.clientPort,
            dstAddress: f.dst.toString(),
            dstPort: f.dstPort,
            startedAt: Date.now(),
          }),
        abort: () => sock.resetAndDestroy(),
      }));
  }

  /** Every TCP flow's end record goes to its user's log. */
  flowEnded(r: FlowRecord): void {
    const { user, peer, type, ...fields } = r;
    this.userLog.write(user, peer, type, fields);
  }

  private savePinning(): void {
    try {
      this.pinning.save(this.pinningFile, Date.now());
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot save the pinned-host list');
    }
  }

  /** Saves the pinned hosts and flushes every user's log. */
  async close(): Promise<void> {
    clearInterval(this.saveTimer);
    this.savePinning();
    await this.userLog.close();
  }
}

export function loadInspectionCa(dataDir: string, passphrase: string | undefined): EnsuredCa {
  return ensureCa(dataDir, { passphrase });
}
