// The concentrator's HTTP services: the admin endpoint (/metrics, /healthz on
// admin.listen) and the employee portal inside the tunnel, with the recent
// decisions both read from the per-user records.
import { exportCa, type EnsuredCa } from '../../mitm';
import type { Config } from '../config';
import type { PeerRegistry, TunnelDevice } from '../control';
import type { DnsForwarder } from '../dns';
import type { Inspection } from '../inspection';
import type { UserLog } from '../logs';
import { peerStatus } from '../process';
import { monotonicNow, type NetStack } from '../../netstack';
import type { PolicyHolder } from '../../policy';
import { AdminServer, type Health } from './admin';
import { RecentDecisions } from './decisions';
import { createMetrics, type MetricsSource } from './metrics';
import { Portal, type PortalCa } from './portal';
import type { PortalDevice } from './portal_page';
import { inspectionScope } from './scope';

/** What the services read from the running concentrator. */
export interface ServiceHost {
  readonly device: TunnelDevice;
  readonly registry: PeerRegistry;
  readonly stack: NetStack;
  readonly dns: DnsForwarder;
  readonly inspection: Inspection;
  readonly counters: Record<string, number>;
  readonly wireguardDrops: Record<string, number>;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly listenPort: number;
  readonly udpUp: boolean;
}

export interface ServicesOptions {
  dataDir: string;
  config: Config;
  ca: EnsuredCa;
  userLog: UserLog;
  /** The concentrator's own tunnel addresses. */
  localAddresses: string[];
  /** The running policy (a reload swaps it): the portal says what it exempts. */
  policy: Pick<PolicyHolder, 'current'>;
}

export class HttpServices {
  readonly decisions: RecentDecisions;
  readonly portal: Portal;
  private admin: AdminServer | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: ServicesOptions, private readonly host: ServiceHost) {
    this.decisions = new RecentDecisions({ inspectPorts: new Set(opts.config.tls.inspectPorts), localAddresses: new Set(opts.localAddresses) });
    opts.userLog.observe((r) => this.decisions.observe(r));
    this.portal = new Portal({
      ca: portalCa(opts.dataDir, opts.ca),
      scopeOf: (user) => inspectionScope(opts.config, opts.policy.current, user),
      decisions: this.decisions,
      devicesOf: (user, ownerId) => this.devicesOf(user, ownerId),
    });
  }

  get adminPort(): number {
    return this.admin?.port ?? 0;
  }

  /** Starts /metrics and /healthz on admin.listen (nothing when it is "off"). */
  async startAdmin(): Promise<void> {
    const listen = this.opts.config.admin.listen;
    if (listen === 'off') return;
    this.admin = await AdminServer.listen(listen, createMetrics(this.metricsSource()), () => this.health());
  }

  async close(): Promise<void> {
    await this.admin?.close();
    this.admin = null;
  }

  private health(): Health {
    const h = this.host;
    const now = monotonicNow();
    let connected = 0;
    for (const p of h.device.peers()) if (p.hasSession(now)) connected++;
    return {
      up: h.udpUp,
      listenPort: h.listenPort,
      peers: h.registry.size,
      connected,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  private devicesOf(user: string, ownerId: string): PortalDevice[] {
    const now = monotonicNow();
    const out: PortalDevice[] = [];
    for (const p of this.host.device.peers()) {
      if (p.tag.user !== user) continue;
      const s = peerStatus(p, now);
      out.push({ name: s.device, ipv4: s.ipv4, ipv6: s.ipv6, state: s.state, connected: s.session, lastHandshake: s.lastHandshakeAt, current: s.publicKey === ownerId });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private metricsSource(): MetricsSource {
    const h = this.host;
    const userLog = this.opts.userLog;
    return {
      peersConfigured: () => h.registry.size,
      peersConnected: () => this.health().connected,
      wireguardCounters: () => ({ ...h.device.counters }),
      tunnelCounters: () => ({ ...h.counters }),
      stackCounters: () => ({ ...h.stack.counters }),
      dnsCounters: () => ({ ...h.dns.counters }),
      bytes: () => ({ in: h.bytesIn, out: h.bytesOut }),
      tcpFlowsOpen: () => h.stack.tcpFlows,
      flowsByAction: () => ({ ...this.decisions.counts }),
      certificateCache: () => h.inspection.minter.stats,
      wireguardDrops: () => ({ ...h.wireguardDrops }),
      logs: () => ({ written: userLog.recordsWritten, dropped: userLog.recordsDropped, errors: userLog.writeErrors }),
    };
  }
}

function portalCa(dataDir: string, ca: EnsuredCa): PortalCa {
  const x = ca.ca.x509;
  const org = /^O=(.+)$/m.exec(x.subject)?.[1] ?? null;
  return {
    pem: exportCa(dataDir, 'pem'),
    der: exportCa(dataDir, 'der'),
    p12: exportCa(dataDir, 'p12'),
    fingerprint: `SHA-256 ${ca.ca.fingerprint}`,
    subject: x.subject.replace(/\n/g, ', '),
    validTo: x.validTo,
    organization: org,
  };
}
