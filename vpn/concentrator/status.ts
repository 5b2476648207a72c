// status.json: what the running concentrator shows `sightline status` and
// the CLI's live views (listener, peers, every layer's counters, buffers,
// the policy), gathered from its layers, and rewritten when it changed
// (StatusFile keeps that cheap with many peers).
import { join } from 'node:path';
import { monotonicNow, processFds, type NetStack } from '../../netstack';
import type { Deployment, PeerRegistry, TunnelDevice } from '../control';
import type { DnsForwarder } from '../dns';
import type { EgressBoundary } from '../egress';
import type { FlowPolicy, PolicyReloader, PolicyReloadStatus } from '../flow_policy';
import type { Inspection } from '../inspection';
import { StatusFile, peerStatus, peersFingerprint, type Logger, type PeerStatus, type ProcessGuard } from '../process';
import type { EgressStatus, RoutedEgress } from '../routed';

export interface StatusSnapshot {
  pid: number;
  writtenAt: string;
  startedAt: string;
  listenPort: number;
  publicKey: string;
  tunnel: { ipv4: string; ipv6: string };
  dnsUpstream: string[];
  egress: EgressStatus;
  peers: PeerStatus[];
  counters: Record<string, Record<string, number>>;
  /** Bytes buffered for flows (buffer budgets): in all, and per user holding any. */
  buffers: { usedBytes: number; limitBytes: number; perUserLimitBytes: number; users: Record<string, number> };
  /** The running policy and its last reload. */
  policy: PolicyReloadStatus;
}

/** The running concentrator, as status.json reads it. */
export interface StatusSource {
  readonly deployment: Deployment;
  /** Wall-clock ms at start. */
  readonly startedAt: number;
  readonly listenPort: number;
  /** The concentrator's own (tunnel) counters. */
  readonly counters: Record<string, number>;
  readonly device: TunnelDevice;
  readonly registry: PeerRegistry;
  readonly stack: NetStack;
  readonly dns: DnsForwarder;
  readonly inspection: Inspection;
  readonly egress: EgressBoundary;
  readonly guard: ProcessGuard;
  readonly policy: { flows: FlowPolicy; reloader: PolicyReloader };
  /** Routed mode's TUN egress; null in socket mode. */
  readonly routedEgress: RoutedEgress | null;
}

export class StatusReport {
  private file: StatusFile | null = null;

  constructor(
    private readonly src: StatusSource,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  snapshot(now: number): StatusSnapshot {
    const s = this.src;
    const d = s.deployment;
    const routed = s.routedEgress;
    return {
      pid: process.pid,
      writtenAt: new Date().toISOString(),
      startedAt: new Date(s.startedAt).toISOString(),
      listenPort: s.listenPort,
      publicKey: d.serverKey.publicKey().toBase64(),
      tunnel: { ipv4: d.layout.serverV4, ipv6: d.layout.serverV6 },
      dnsUpstream: s.dns.upstreams.map((u) => `${u.host}:${u.port}`),
      egress: routed?.status() ?? { mode: 'socket' },
      peers: [...s.device.peers()].map((p) => peerStatus(p, now)),
      counters: {
        tunnel: { ...s.counters },
        wireguard: { ...s.device.counters },
        stack: { ...s.stack.counters },
        dns: { ...s.dns.counters },
        inspection: { ...s.inspection.engine.counters },
        process: { ...s.guard.counters },
        fds: { ...processFds.snapshot() },
        egress: { ...s.egress.counters },
        policy: { ...s.policy.flows.counters },
        ...(routed && { routed: { ...routed.counters }, tun: { ...routed.tunCounters } }),
      },
      buffers: {
        usedBytes: s.stack.budgets?.used ?? 0,
        limitBytes: d.config.limits.maxBufferedBytes,
        perUserLimitBytes: d.config.limits.maxBufferedBytesPerUser,
        users: s.stack.budgets?.usage() ?? {},
      },
      policy: s.policy.reloader.status,
    };
  }

  /** Rewrites status.json when it changed (less often with many peers), else refreshes its mtime. */
  write(): void {
    const s = this.src;
    this.file ??= new StatusFile(join(s.deployment.dataDir, 'status.json'), this.intervalMs);
    const now = monotonicNow();
    const peers = peersFingerprint(s.device.peers(), now);
    const counters = [s.counters, s.device.counters, s.stack.counters, s.dns.counters, s.inspection.engine.counters, s.egress.counters, s.guard.counters, processFds.snapshot(), s.routedEgress?.counters, s.policy.flows.counters, s.policy.reloader.status];
    const fingerprint = `${s.listenPort}|${s.registry.generation}|${peers}|${JSON.stringify(counters)}`;
    try {
      this.file.update(now, s.registry.size, fingerprint, () => this.text(now));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write status.json');
    }
  }

  /** Before a fatal exit: the last status (with the fault counted), whether or not it changed. */
  writeLast(): void {
    try {
      this.file?.writeNow(() => this.text(monotonicNow()));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write the last status.json');
    }
  }

  private text(now: number): string {
    return JSON.stringify(this.snapshot(now), null, 2) + '\n';
  }
}
