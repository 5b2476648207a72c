// The concentrator process: wires the UDP edge, the WireGuard device, the
// peer registry (state store → device + cryptokey routing), the userspace
// network stack and the DNS forwarder. All protocol logic lives in the
// layers; this file only connects them and owns the timers.
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { IpAddress, IpCidr } from '../netstack/wire';
import { Counters, NetStack, processFds, socketEgress, type StackEvent } from '../netstack';
import type { Deployment } from './control';
import { DnsForwarder, maxUdpAnswerSize, parseDnsServers, systemResolvers } from './dns';
import type { Logger } from './process';
import { PeerRegistry, storeSource, type CutReason, type PeerTag, type TunnelPeer } from './control';
import { WgDevice, type DeviceEvent, type DeviceOutput, type Endpoint } from './protocol';
import { StatusFile, peerStatus, peersFingerprint, type PeerStatus } from './process';
import { UdpEdge } from './edge';
import { Inspection, loadInspectionCa } from './inspection';
import { IncidentLog } from './process';
import { ProcessGuard } from './process';
import { EgressBoundary } from './egress';
import { RoutedEgress, cleanUpRoutedLeftovers, type EgressStatus } from './routed';
import { TunnelRecords } from './logs/tunnel_records';
import { HttpServices, PORTAL_PORT } from './http';
import { compilePolicy, PolicyHolder } from '../policy';
import { FlowPolicy, PolicyReloader, TcpPolicy, type PolicyReloadStatus } from './flow_policy';

const TICK_MS = 100;
const PEER_SYNC_MS = 200;
const STATUS_MS = 1000;
/** How often open descriptors are re-counted for the egress budget (a /proc listing). */
const FD_CALIBRATE_MS = 2000;
const DNS_PORT = 53;
const DNS_TCP_TIMEOUT_MS = 5000;
// IPv6 + UDP headers: the largest DNS answer that fits one tunnel packet.
const IP_UDP_OVERHEAD = 48;

export class Concentrator {
  private readonly tunnelCounters = new Counters();
  /** Drops the WireGuard device reported, by reason (for /metrics). */
  private readonly dropCounters = new Counters();
  /** Bytes on the UDP socket (for /metrics). */
  bytesIn = 0;
  bytesOut = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  /** Set once a fatal fault was reported: no more packets through a device that may be broken. */
  private dying = false;
  /** Routed mode's TUN egress; null in socket mode. */
  private routed: RoutedEgress | null = null;

  private constructor(
    private readonly d: Deployment,
    readonly log: Logger,
    readonly device: WgDevice<PeerTag>,
    readonly registry: PeerRegistry,
    readonly stack: NetStack,
    readonly dns: DnsForwarder,
    readonly inspection: Inspection,
    readonly egress: EgressBoundary,
    readonly records: TunnelRecords,
    readonly http: HttpServices,
    private edge: UdpEdge | null,
    readonly guard: ProcessGuard,
    private readonly incidents: IncidentLog,
    /** Policy on the data path: decisions per flow, and its hot reload. */
    readonly policy: { flows: FlowPolicy; reloader: PolicyReloader },
  ) {}

  /** `guard` receives faults of the WireGuard core (default: one that exits, not installed on the process). */
  static async start(d: Deployment, log: Logger, opts: { caPassphrase?: string; guard?: ProcessGuard } = {}): Promise<Concentrator> {
    const guard = opts.guard ?? new ProcessGuard({ log });
    const incidents = new IncidentLog(log);
    // What a killed routed-mode run left on the host goes first (routed mode does it once its TUN is open).
    if (d.config.egress.mode === 'socket') cleanUpRoutedLeftovers(d.dataDir, log);
    const serverAddrs = [IpAddress.parse(d.layout.serverV4), IpAddress.parse(d.layout.serverV6)];
    // Per-user logs (vpn/logs): session, dns and every other record, with the device named.
    const records = new TunnelRecords(d.dataDir, d.config);
    // The trust boundary: every outbound path asks it (refusals go to the user's log).
    const egress = new EgressBoundary({
      config: d.config,
      tunnelAddresses: serverAddrs,
      // Peers never reach each other's tunnel addresses through us.
      tunnelPools: [IpCidr.parse(d.ipv4Pool), IpCidr.parse(d.ipv6Pool)],
      records: records.userLog,
      log,
    });
    // An explicit dns.upstream is the admin's word; the host's own resolvers pass the guard.
    const upstreams = d.config.dns.upstream ? parseDnsServers(d.config.dns.upstream) : egress.permittedResolvers(systemResolvers());
    if (upstreams.length === 0) log.warn('no DNS upstream: set dns.upstream in sightline.yaml (no nameserver in /etc/resolv.conf)');

    // The inspection CA is made on first start, unique to this deployment.
    const inspection = new Inspection(d.dataDir, d.config, loadInspectionCa(d.dataDir, opts.caPassphrase), log, {
      forFlow: (user, peer) => egress.fetcherFor(user, peer),
      shared: egress.sharedFetcher,
    }, records.userLog);
    // The employee portal (tunnel addresses, TCP 80) and /metrics, /healthz (admin.listen).
    const http = new HttpServices({ dataDir: d.dataDir, config: d.config, ca: inspection.ca, userLog: records.userLog, localAddresses: serverAddrs.map(String) }, () => self);
    // One decision per flow, by the function `sightline policy explain` calls (DNS to the concentrator is no flow of policy's).
    const holder = new PolicyHolder(compilePolicy(d.config));
    const flows = new FlowPolicy({ holder, inspectPorts: d.config.tls.inspectPorts, records: records.userLog, now: () => performance.now() });
    const tcpPolicy = new TcpPolicy({ fp: flows, engine: inspection.engine, dial: inspection.dial, nonTls: d.config.tls.nonTls });
    const reloader = new PolicyReloader({ holder, configPath: d.configSource, running: d.config, log });
    // Late-bound: the device, stack and edge refer to each other through the concentrator.
    let self: Concentrator | null = null;
    const device = new WgDevice<PeerTag>({ privateKey: d.serverKey, acceptEndpoint: egress.acceptsEndpoint });
    const stack = new NetStack({
      localAddresses: serverAddrs,
      guard: egress.guard,
      onOutput: () => self?.drainStack(),
      udp: { idleTimeoutMs: d.config.udp.idleTimeoutSeconds * 1000, maxFlowsPerUser: d.config.udp.maxFlowsPerUser },
      tcp: {
        mtu: d.config.mtu,
        idleTimeoutMs: d.config.tcp.idleTimeoutSeconds * 1000,
        maxFlowsPerUser: d.config.tcp.maxFlowsPerUser,
        maxSynPerSecond: d.config.tcp.maxSynPerSecond,
      },
      tcpHandler: (flow) => {
        if (!flow.local) return tcpPolicy.handlerFor(flow);
        if (flow.dstPort === PORTAL_PORT) return http.portal.handlerFor(flow);
        // DNS over TCP to the concentrator (RFC 7766) is relayed to the first upstream.
        if (flow.dstPort !== DNS_PORT || upstreams.length === 0) return null;
        return () => socketEgress(upstreams[0].host, upstreams[0].port, DNS_TCP_TIMEOUT_MS);
      },
      admit: (owner, protocol, dst, dstPort) => flows.admitDatagram(owner, protocol, dst, dstPort),
      blockedUdpPorts: d.config.tls.blockQuic ? d.config.tls.inspectPorts : [],
      bufferLimits: { perUser: d.config.limits.maxBufferedBytesPerUser, total: d.config.limits.maxBufferedBytes },
    });
    const dns = new DnsForwarder({
      upstreams,
      maxInFlightPerUser: d.config.dns.maxInFlightPerUser,
      maxInFlight: d.config.dns.maxInFlight,
      budget: stack.budgets ?? undefined,
      onError: (what, err) => log.debug({ err: err.message }, `${what} failed`),
    });
    const tunnelLimit = d.config.mtu - IP_UDP_OVERHEAD;
    stack.udpService(DNS_PORT, (req, reply) =>
      dns.handle(req.payload, maxUdpAnswerSize(req.payload, tunnelLimit), reply, req.owner.user, records.dnsQuery(req.owner, req.payload, () => performance.now())));

    const registry = new PeerRegistry(storeSource(d.store), device, (tag, why) => self?.tunnelCut(tag, why));
    const c = new Concentrator(d, log, device, registry, stack, dns, inspection, egress, records, http, null, guard, incidents, { flows, reloader });
    reloader.start();
    self = c;
    guard.beforeExit(() => c.lastWords());
    registry.sync();
    if (d.config.egress.mode === 'routed') {
      c.routed = RoutedEgress.start({
        dataDir: d.dataDir, config: d.config, serverV4: d.layout.serverV4, serverV6: d.layout.serverV6, ipv4Pool: d.ipv4Pool, ipv6Pool: d.ipv6Pool,
        guard: egress.guard, toClient: (p) => c.toTunnel(p), toPeer: (p) => c.toTunnel(p), log,
        // One policy for both modes: a reload applies to routed packets too, and blocks are the same `policy` records.
        policy: () => holder.current, onBlocked: (b) => flows.routedBlock(b),
      });
    }
    records.peersChanged(device.peers(), registry.size);

    c.edge = await UdpEdge.listen({
      port: d.config.listenPort,
      address: d.config.listenAddress,
      onDatagram: (data, from) => c.fromUdp(data, from),
      onError: (err) => c.incident('udp_edge_error', 'warn', err),
      onFallback: (why) => log.warn(why),
    });
    try {
      await http.startAdmin();
    } catch (err) {
      await c.stop();
      throw err;
    }
    c.every(TICK_MS, () => {
      const now = performance.now();
      if (!c.dying) {
        let out: DeviceOutput<PeerTag> | null = null;
        try {
          out = device.tick(now);
        } catch (err) {
          c.coreFault(err);
        }
        if (out !== null) c.route(out);
      }
      stack.tick(now);
      c.drainStack();
    });
    c.every(PEER_SYNC_MS, () => c.syncPeers());
    c.every(STATUS_MS, () => {
      incidents.flush();
      c.writeStatus();
    });
    c.every(FD_CALIBRATE_MS, () => processFds.recalibrate());
    c.writeStatus();
    return c;
  }

  /** A fault of the WireGuard device is fatal (ProcessGuard), never contained: its state cannot be trusted. */
  private coreFault(err: unknown): void {
    this.dying = true;
    this.guard.fatal('wireguard_core_error', err);
  }

  /** A failure outside any flow that the process survives: counted, logged once per burst. */
  private incident(reason: string, severity: 'warn' | 'error', error: unknown): void {
    this.count(reason);
    this.incidents.report({ reason, severity, error });
  }

  /** Before a fatal exit: the last status (with the fault counted), then every log flushed. */
  private async lastWords(): Promise<void> {
    this.dying = true;
    try {
      this.statusFile?.writeNow(() => JSON.stringify(this.status(), null, 2) + '\n');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write the last status.json');
    }
    await this.stop();
  }

  /** SIGHUP: the config is read again; a valid policy applies to new flows, an invalid one is logged and the running one stays. */
  reloadPolicy(trigger: string): void {
    this.policy.reloader.reload(trigger);
  }

  get listenPort(): number {
    return this.edge?.port ?? 0;
  }

  /** The WireGuard UDP socket is open (/healthz). */
  get udpUp(): boolean {
    return this.edge !== null;
  }


  /** A periodic job with an error boundary: a failing run is counted and logged, the next run comes. */
  private every(ms: number, fn: () => void): void {
    this.timers.push(
      setInterval(() => {
        try {
          fn();
        } catch (err) {
          this.incident('timer_error', 'error', err);
        }
      }, ms),
    );
  }

  private fromUdp(data: Buffer, from: Endpoint): void {
    if (this.dying) return;
    this.bytesIn += data.length;
    let out: DeviceOutput<PeerTag>;
    try {
      out = this.device.receive(data, from, performance.now());
    } catch (err) {
      this.coreFault(err);
      return;
    }
    this.route(out);
  }

  /**
   * What the device produced: datagrams to the edge, events to the records,
   * and last the packet to the stack, which may call the device again (and
   * so refill `out`).
   */
  private route(out: DeviceOutput<PeerTag>): void {
    for (let i = 0; i < out.datagrams.length; i++) {
      this.bytesOut += out.datagrams[i].length;
      this.edge?.send(out.datagrams[i], out.endpoints[i]);
    }
    for (const e of out.events) this.onDeviceEvent(e);
    if (out.packet !== null && out.peer !== null) this.fromTunnel(out.peer, out.packet);
  }

  private stackTimer: NodeJS.Timeout | null = null;
  private stackTimerAt = Infinity;
  private drainingStack = false;

  /**
   * What the stack produced (returned by a call, or added by I/O since):
   * packets into the tunnel, events to the records and logs. Then the timer
   * for its next deadline.
   */
  private drainStack(): void {
    if (this.drainingStack) return; // the drain in progress takes what was added meanwhile
    this.drainingStack = true;
    const out = this.stack.output;
    try {
      for (let i = 0, j = 0; i < out.packets.length || j < out.events.length; ) {
        if (i < out.packets.length) this.toTunnel(out.packets[i++]);
        else this.onStackEvent(out.events[j++]);
      }
    } finally {
      out.clear();
      this.drainingStack = false;
    }
    this.armStackTimer(out.wakeAt);
  }

  private onStackEvent(e: StackEvent): void {
    switch (e.type) {
      case 'flow_end':
        return this.inspection.flowEnded(e.record);
      case 'egress_denied':
        return this.egress.onStackDenial(e.denial);
      case 'incident':
        return this.incidents.report(e.incident);
      case 'budget_refusal': {
        const { user, peer, type, ...fields } = e.record;
        return this.inspection.userLog.write(user, peer, type, fields);
      }
    }
  }

  /** TCP timers (delayed ACK, RTO) need ms precision: one timer for the earliest deadline. */
  private armStackTimer(at: number | null): void {
    if (at === null || at >= this.stackTimerAt || this.stopping !== null) return;
    if (this.stackTimer !== null) clearTimeout(this.stackTimer);
    this.stackTimerAt = at;
    this.stackTimer = setTimeout(() => {
      this.stackTimer = null;
      this.stackTimerAt = Infinity;
      // stack.tick() never throws (the stack's own boundary).
      this.stack.tick(performance.now());
      this.drainStack();
    }, Math.max(0, at - performance.now()));
  }

  /** A decrypted packet from a peer: enforce its source, then hand it to the stack. */
  private fromTunnel(peer: TunnelPeer, packet: Buffer): void {
    const refused = this.registry.allowedIps.refusesSource(packet, peer);
    if (refused !== null) {
      this.count(refused);
      return;
    }
    if (this.routed?.take(packet, peer.tag.owner)) return;
    this.stack.receive(packet, peer.tag.owner, performance.now());
    this.drainStack();
  }

  /** A packet from the stack (or the TUN) to a tunnel address: only the peer owning it gets it. False when no peer does. */
  private toTunnel(packet: Buffer): boolean {
    const peer = this.registry.allowedIps.destinationOwner(packet);
    if (peer === undefined) {
      this.count('no_route_to_peer');
      return false;
    }
    if (this.dying) return true;
    let out: DeviceOutput<PeerTag>;
    try {
      out = this.device.send(peer, packet, performance.now());
    } catch (err) {
      this.coreFault(err);
      return true;
    }
    this.route(out);
    return true;
  }

  private onDeviceEvent(e: DeviceEvent<PeerTag>): void {
    this.records.deviceEvent(e);
    if (e.type === 'drop') this.dropCounters.inc(e.reason);
    if (e.type === 'handshake_complete') {
      const tag = e.peer.tag;
      this.log.info({ user: tag.user, device: tag.device, peer: tag.name, endpoint: e.peer.endpoint }, 'handshake complete');
    } else if (e.type === 'endpoint_changed') {
      const tag = e.peer.tag;
      this.log.info({ user: tag.user, device: tag.device, peer: tag.name, from: e.from, to: e.to }, 'peer endpoint changed');
    } else if (e.type === 'drop' && e.peer !== undefined && e.peer.refused !== null && e.reason.startsWith('handshake_refused_')) {
      const tag = e.peer.tag;
      tag.refusedHandshakes++;
      this.log.debug({ user: tag.user, device: tag.device, peer: tag.name, state: tag.state }, 'handshake refused');
    }
  }

  /** A device was disabled, expired or removed while active: its flows end with it. */
  private tunnelCut(tag: PeerTag, why: CutReason): void {
    this.records.tunnelCut(tag, why);
    const closed = this.stack.closeFlowsOf(tag.owner.id, `tunnel_${why}`, performance.now());
    this.drainStack();
    this.log.info({ user: tag.user, device: tag.device, peer: tag.name, reason: why, tcpFlows: closed.tcp, udpFlows: closed.udp }, 'tunnel cut');
  }

  private syncPeers(): void {
    try {
      const changed = this.registry.syncIfChanged();
      if (changed) {
        this.records.peersChanged(this.device.peers(), this.registry.size);
        this.log.info(changed, 'peers reloaded');
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'peer reload failed; keeping the current peers');
    }
  }

  get counters(): Record<string, number> {
    return this.tunnelCounters.values;
  }

  get wireguardDrops(): Record<string, number> {
    return this.dropCounters.values;
  }

  private count(reason: string): void {
    this.tunnelCounters.inc(reason);
  }

  status(): StatusSnapshot {
    const now = performance.now();
    return {
      pid: process.pid,
      writtenAt: new Date().toISOString(),
      startedAt: new Date(this.startedAt).toISOString(),
      listenPort: this.listenPort,
      publicKey: this.d.serverKey.publicKey().toBase64(),
      tunnel: { ipv4: this.d.layout.serverV4, ipv6: this.d.layout.serverV6 },
      dnsUpstream: this.dns.upstreams.map((s) => `${s.host}:${s.port}`),
      egress: this.routed?.status() ?? { mode: 'socket' },
      peers: [...this.device.peers()].map((p) => peerStatus(p, now)),
      counters: {
        tunnel: { ...this.counters },
        wireguard: { ...this.device.counters },
        stack: { ...this.stack.counters },
        dns: { ...this.dns.counters },
        inspection: { ...this.inspection.engine.counters },
        process: { ...this.guard.counters },
        fds: { ...processFds.snapshot() },
        egress: { ...this.egress.counters },
        policy: { ...this.policy.flows.counters },
        ...(this.routed && { routed: { ...this.routed.counters }, tun: { ...this.routed.tunCounters } }),
      },
      buffers: {
        usedBytes: this.stack.budgets?.used ?? 0,
        limitBytes: this.d.config.limits.maxBufferedBytes,
        perUserLimitBytes: this.d.config.limits.maxBufferedBytesPerUser,
        users: this.stack.budgets?.usage() ?? {},
      },
      policy: this.policy.reloader.status,
    };
  }

  private statusFile: StatusFile | null = null;

  /** Rewrites status.json when it changed (less often with many peers), else refreshes its mtime. */
  private writeStatus(): void {
    this.statusFile ??= new StatusFile(join(this.d.dataDir, 'status.json'), STATUS_MS);
    const now = performance.now();
    const peers = peersFingerprint(this.device.peers(), now);
    const counters = [this.counters, this.device.counters, this.stack.counters, this.dns.counters, this.inspection.engine.counters, this.egress.counters, this.guard.counters, processFds.snapshot(), this.routed?.counters, this.policy.flows.counters, this.policy.reloader.status];
    const fingerprint = `${this.listenPort}|${this.registry.generation}|${peers}|${JSON.stringify(counters)}`;
    try {
      this.statusFile.update(now, this.registry.size, fingerprint, () => JSON.stringify(this.status(), null, 2) + '\n');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write status.json');
    }
  }

  private stopping: Promise<void> | null = null;

  /** Idempotent: a fatal exit's last words and a signal may both ask. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    if (this.stackTimer !== null) clearTimeout(this.stackTimer);
    await this.edge?.close();
    this.edge = null;
    await this.http.close();
    this.stack.close(performance.now());
    this.drainStack();
    await this.routed?.close();
    this.egress.stop();
    this.dns.close();
    this.policy.reloader.stop();
    await this.inspection.close();
    // Every record accepted so far reaches the disk before the process exits (SIGTERM).
    await this.records.close(this.device.peers());
    this.d.store.close();
  }
}

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

