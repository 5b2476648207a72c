// The concentrator process: wiring only. It builds the layers from the
// deployment, then runs one loop: datagrams from the UDP edge feed the
// WireGuard device; the device's output goes back to the edge (datagrams),
// to the records (events) and, through cryptokey routing, to the TUN (routed
// mode) or the userspace stack; the stack's output goes back into the tunnel
// the same way. One timer is armed for the earliest deadline of the device
// and the stack. This file reads the clock; the layers are passed `now`.
import { IpAddress, IpCidr } from '../../netstack/wire';
import { Counters, NetStack, monotonicNow, processFds, type StackEvent, type TcpFlowHandler, type TcpFlowInfo } from '../../netstack';
import { PeerRegistry, storeSource, type CutReason, type Deployment, type PeerTag, type TunnelPeer } from '../control';
import { DNS_PORT, DnsForwarder, dnsOverTcp, dnsOverUdp, parseDnsServers, systemResolvers } from '../dns';
import { UdpEdge } from '../edge';
import { EgressBoundary } from '../egress';
import { HttpServices, PORTAL_PORT } from '../http';
import { Inspection, loadInspectionCa } from '../inspection';
import { TunnelRecords } from '../logs';
import { IncidentLog, ProcessGuard, type Logger } from '../process';
import { WgDevice, type DeviceEvent, type DeviceOutput, type Endpoint } from '../protocol';
import { RoutedEgress, cleanUpRoutedLeftovers } from '../routed';
import { compilePolicy, PolicyHolder } from '../../policy';
import { FlowPolicy, PolicyReloader, TcpPolicy } from '../flow_policy';
import { StatusReport, type StatusSnapshot } from './status';

export type { StatusSnapshot } from './status';

const PEER_SYNC_MS = 200;
const STATUS_MS = 1000;
/** How often open descriptors are re-counted for the egress budget (a /proc listing). */
const FD_CALIBRATE_MS = 2000;

export class Concentrator {
  readonly device: WgDevice<PeerTag>;
  readonly registry: PeerRegistry;
  readonly stack: NetStack;
  readonly dns: DnsForwarder;
  /** TCP flows to the DNS port of a tunnel address: queries through the forwarder, like UDP ones. */
  private readonly dnsOverTcp: (flow: TcpFlowInfo) => TcpFlowHandler;
  readonly inspection: Inspection;
  readonly egress: EgressBoundary;
  readonly records: TunnelRecords;
  readonly http: HttpServices;
  readonly guard: ProcessGuard;
  /** Policy on the data path: the running policy, decisions per flow, and its hot reload. */
  readonly policy: { holder: PolicyHolder; flows: FlowPolicy; reloader: PolicyReloader };
  private readonly incidents: IncidentLog;
  private readonly tunnelCounters = new Counters();
  /** Drops the WireGuard device reported, by reason (for /metrics). */
  private readonly dropCounters = new Counters();
  /** Bytes on the UDP socket (for /metrics). */
  bytesIn = 0;
  bytesOut = 0;
  /** Wall-clock ms at start (status.json). */
  readonly startedAt = Date.now();
  private readonly intervals: NodeJS.Timeout[] = [];
  /** The UDP socket; null until it listens and after stop(). */
  private edge: UdpEdge | null = null;
  /** Routed mode's TUN egress; null in socket mode. */
  private routed: RoutedEgress | null = null;
  /** The one timer, armed for the earliest deadline of the device and the stack. */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** Set while the stack's output is being taken (output added meanwhile is taken by the same pass). */
  private drainingStack = false;
  /** Datagrams of a receive batch are being fed to the stack (see endOfBatch). */
  private inBatch = false;
  /** Set once a fatal fault was reported: no more packets through a device that may be broken. */
  private dying = false;
  private readonly statusReport: StatusReport;
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly d: Deployment,
    readonly log: Logger,
    opts: { caPassphrase?: string; guard?: ProcessGuard },
  ) {
    const { config } = d;
    this.guard = opts.guard ?? new ProcessGuard({ log });
    this.incidents = new IncidentLog(log);
    const serverAddrs = [IpAddress.parse(d.layout.serverV4), IpAddress.parse(d.layout.serverV6)];
    // Per-user logs (vpn/logs): session, dns and every other record, with the device named.
    this.records = new TunnelRecords(d.dataDir, config);
    const userLog = this.records.userLog;
    // The trust boundary: every outbound path asks it (refusals go to the user's log).
    this.egress = new EgressBoundary({
      config,
      tunnelAddresses: serverAddrs,
      // Peers never reach each other's tunnel addresses through us.
      tunnelPools: [IpCidr.parse(d.ipv4Pool), IpCidr.parse(d.ipv6Pool)],
      records: userLog,
      log,
    });
    // An explicit dns.upstream is the admin's word; the host's own resolvers pass the guard.
    const upstreams = config.dns.upstream ? parseDnsServers(config.dns.upstream) : this.egress.permittedResolvers(systemResolvers());
    if (upstreams.length === 0) log.warn('no DNS upstream: set dns.upstream in sightline.yaml (no nameserver in /etc/resolv.conf)');
    // The inspection CA is made on first start, unique to this deployment.
    this.inspection = new Inspection(d.dataDir, config, loadInspectionCa(d.dataDir, opts.caPassphrase), log, {
      forFlow: (user, peer) => this.egress.fetcherFor(user, peer),
      shared: this.egress.sharedFetcher,
    }, userLog);
    // One decision per flow, by the function `sightline policy explain` calls (DNS to the concentrator is no flow of policy's).
    const holder = new PolicyHolder(compilePolicy(config));
    // The employee portal (tunnel addresses, TCP 80; it says what the running policy exempts) and /metrics, /healthz (admin.listen), reading this concentrator.
    this.http = new HttpServices({ dataDir: d.dataDir, config, ca: this.inspection.ca, userLog, localAddresses: serverAddrs.map(String), policy: holder }, this);
    const flows = new FlowPolicy({ holder, inspectPorts: config.tls.inspectPorts, records: userLog, now: monotonicNow });
    const tcpPolicy = new TcpPolicy({ fp: flows, engine: this.inspection.engine, dial: this.inspection.dial, nonTls: config.tls.nonTls });
    this.policy = { holder, flows, reloader: new PolicyReloader({ holder, configPath: d.configSource, running: config, log }) };
    this.device = new WgDevice<PeerTag>({ privateKey: d.serverKey, wallClock: Date.now, acceptEndpoint: this.egress.acceptsEndpoint });
    this.stack = new NetStack({
      localAddresses: serverAddrs,
      guard: this.egress.guard,
      onOutput: () => this.drainStack(monotonicNow()),
      clock: monotonicNow,
      udp: { idleTimeoutMs: config.udp.idleTimeoutSeconds * 1000, maxFlowsPerUser: config.udp.maxFlowsPerUser },
      tcp: {
        mtu: config.mtu,
        idleTimeoutMs: config.tcp.idleTimeoutSeconds * 1000,
        maxFlowsPerUser: config.tcp.maxFlowsPerUser,
        maxSynPerSecond: config.tcp.maxSynPerSecond,
      },
      tcpHandler: (flow) => {
        if (!flow.local) return tcpPolicy.handlerFor(flow);
        if (flow.dstPort === PORTAL_PORT) return this.http.portal.handlerFor(flow);
        return flow.dstPort === DNS_PORT ? this.dnsOverTcp(flow) : null;
      },
      admit: (owner, protocol, dst, dstPort) => flows.admitDatagram(owner, protocol, dst, dstPort),
      blockedUdpPorts: config.tls.blockQuic ? config.tls.inspectPorts : [],
      bufferLimits: { perUser: config.limits.maxBufferedBytesPerUser, total: config.limits.maxBufferedBytes },
    });
    this.dns = new DnsForwarder({
      upstreams,
      maxInFlightPerUser: config.dns.maxInFlightPerUser,
      maxInFlight: config.dns.maxInFlight,
      maxQueriesPerSecondPerUser: config.dns.maxQueriesPerSecondPerUser,
      queryBurstPerUser: config.dns.queryBurstPerUser,
      budget: this.stack.budgets ?? undefined,
      onError: (what, err) => log.debug({ err: err.message }, `${what} failed`),
    });
    const recordQuery = (owner: { id: string; user: string }, query: Buffer) => this.records.dnsQuery(owner, query, monotonicNow());
    this.stack.udpService(DNS_PORT, dnsOverUdp(this.dns, config.mtu, recordQuery));
    this.dnsOverTcp = dnsOverTcp(this.dns, recordQuery);
    this.registry = new PeerRegistry(storeSource(d.store), this.device, (tag, why) => this.tunnelCut(tag, why));
    this.statusReport = new StatusReport(this, log, STATUS_MS);
  }

  /** `guard` receives faults of the WireGuard core (default: one that exits, not installed on the process). */
  static async start(d: Deployment, log: Logger, opts: { caPassphrase?: string; guard?: ProcessGuard } = {}): Promise<Concentrator> {
    // What a killed routed-mode run left on the host goes first (routed mode does it once its TUN is open).
    if (d.config.egress.mode === 'socket') cleanUpRoutedLeftovers(d.dataDir, log);
    const c = new Concentrator(d, log, opts);
    c.policy.reloader.start();
    c.guard.beforeExit(() => c.lastWords());
    c.registry.sync(Date.now());
    if (d.config.egress.mode === 'routed') {
      const toTunnel = (p: Buffer): boolean => c.toTunnel(p, monotonicNow());
      c.routed = RoutedEgress.start({
        dataDir: d.dataDir, config: d.config, serverV4: d.layout.serverV4, serverV6: d.layout.serverV6, ipv4Pool: d.ipv4Pool, ipv6Pool: d.ipv6Pool,
        guard: c.egress.guard, toClient: toTunnel, toPeer: toTunnel, log,
        // One policy for both modes: a reload applies to routed packets too, and blocks are the same `policy` records.
        policy: () => c.policy.holder.current, onBlocked: (b) => c.policy.flows.routedBlock(b),
      });
    }
    c.records.peersChanged(c.device.peers(), c.registry.size);
    c.edge = await UdpEdge.listen({
      port: d.config.listenPort,
      address: d.config.listenAddress,
      onDatagram: (data, from) => c.fromUdp(data, from),
      onBatchEnd: () => c.endOfBatch(),
      onError: (err) => c.incident('udp_edge_error', 'warn', err),
      onFallback: (why) => log.warn(why),
    });
    try {
      await c.http.startAdmin();
    } catch (err) {
      await c.stop();
      throw err;
    }
    c.every(PEER_SYNC_MS, () => c.syncPeers());
    c.every(STATUS_MS, () => {
      c.incidents.flush(monotonicNow());
      c.statusReport.write();
    });
    c.every(FD_CALIBRATE_MS, () => processFds.recalibrate());
    c.statusReport.write();
    return c;
  }

  // ---- the loop ----

  private fromUdp(data: Buffer, from: Endpoint): void {
    if (this.dying) return;
    if (!this.inBatch) {
      this.inBatch = true;
      // The previous batch's packets are done with: the stack and the
      // routed egress copied what they keep (the TUN's queue was written at
      // the end of that batch, in a microtask), so they are opened over.
      this.device.recyclePackets();
      this.stack.beginBatch();
    }
    this.bytesIn += data.length;
    const now = monotonicNow();
    let out: DeviceOutput<PeerTag>;
    try {
      out = this.device.receive(data, from, now);
    } catch (err) {
      return this.coreFault(err);
    }
    this.route(out, now);
  }

  /** The edge's receive batch is over: the stack sends the ACKs it held for it (NetStack.beginBatch). */
  private endOfBatch(): void {
    if (!this.inBatch) return;
    this.inBatch = false;
    const now = monotonicNow();
    this.stack.endBatch(now);
    this.drainStack(now);
  }

  /**
   * What the device produced: datagrams to the edge, events to the records,
   * and last the packet into the network, which may call the device again
   * (and so refill `out`).
   */
  private route(out: DeviceOutput<PeerTag>, now: number): void {
    for (let i = 0; i < out.datagrams.length; i++) {
      const d = out.datagrams[i];
      this.bytesOut += d instanceof Uint8Array ? d.length : d.sealedLength;
      this.edge?.sendDatagram(d, out.endpoints[i]);
    }
    for (const e of out.events) this.onDeviceEvent(e);
    this.arm(out.wakeAt);
    if (out.packet !== null && out.peer !== null) this.fromTunnel(out.peer, out.packet, now);
  }

  /** A decrypted packet from a peer: its source must be the peer's own (cryptokey routing), then the TUN or the stack takes it. */
  private fromTunnel(peer: TunnelPeer, packet: Buffer, now: number): void {
    const refused = this.registry.allowedIps.refusesSource(packet, peer);
    if (refused !== null) return this.count(refused);
    if (this.routed?.take(packet, peer.tag.owner)) return;
    this.stack.receive(packet, peer.tag.owner, now);
    this.drainStack(now);
  }

  /** A packet from the stack (or the TUN) into the tunnel: only the peer owning its destination gets it. False when no peer does. */
  private toTunnel(packet: Buffer, now: number): boolean {
    const peer = this.registry.allowedIps.destinationOwner(packet);
    if (peer === undefined) {
      this.count('no_route_to_peer');
      return false;
    }
    if (this.dying) return true;
    let out: DeviceOutput<PeerTag>;
    try {
      out = this.device.send(peer, packet, now);
    } catch (err) {
      this.coreFault(err);
      return true;
    }
    this.route(out, now);
    return true;
  }

  /** What the stack produced (returned by a call, or added by its I/O since): packets into the tunnel, events to the logs. */
  private drainStack(now: number): void {
    if (this.drainingStack) return;
    this.drainingStack = true;
    const out = this.stack.output;
    try {
      for (let i = 0, j = 0; i < out.packets.length || j < out.events.length; ) {
        if (i < out.packets.length) this.toTunnel(out.packets[i++], now);
        else this.onStackEvent(out.events[j++]);
      }
    } finally {
      out.clear();
      this.drainingStack = false;
    }
    // Each packet went to the device, which sealed it into the edge's send
    // queue (or copied it to stage it) before returning, or was dropped.
    this.stack.recyclePackets();
    this.arm(out.wakeAt);
  }

  /** One timer for the earliest deadline of the device (WireGuard timers) and the stack (TCP timers need ms precision). */
  private arm(at: number | null): void {
    if (at === null || at >= this.timerAt || this.stopping !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, at - monotonicNow()));
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = monotonicNow();
    if (!this.dying) {
      let out: DeviceOutput<PeerTag> | null = null;
      try {
        out = this.device.tick(now);
      } catch (err) {
        this.coreFault(err);
      }
      if (out !== null) this.route(out, now);
    }
    // stack.tick() never throws (the stack's own boundary).
    this.stack.tick(now);
    this.drainStack(now);
    this.arm(this.device.nextTimerAt());
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

  private onStackEvent(e: StackEvent): void {
    switch (e.type) {
      case 'flow_end':
        return this.inspection.userLog.writeRecord(e.record);
      case 'egress_denied':
        return this.egress.onStackDenial(e.denial);
      case 'incident':
        return this.incidents.report(e.incident, monotonicNow());
      case 'budget_refusal':
        return this.inspection.userLog.writeRecord(e.record);
    }
  }

  /** A device was disabled, expired or removed while active: its flows end with it. */
  private tunnelCut(tag: PeerTag, why: CutReason): void {
    this.records.tunnelCut(tag, why);
    const now = monotonicNow();
    const closed = this.stack.closeFlowsOf(tag.owner.id, `tunnel_${why}`, now);
    this.drainStack(now);
    this.log.info({ user: tag.user, device: tag.device, peer: tag.name, reason: why, tcpFlows: closed.tcp, udpFlows: closed.udp }, 'tunnel cut');
  }

  // ---- around the loop ----

  /** A fault of the WireGuard device is fatal (ProcessGuard), never contained: its state cannot be trusted. */
  private coreFault(err: unknown): void {
    this.dying = true;
    this.guard.fatal('wireguard_core_error', err);
  }

  /** A failure outside any flow that the process survives: counted, logged once per burst. */
  private incident(reason: string, severity: 'warn' | 'error', error: unknown): void {
    this.count(reason);
    this.incidents.report({ reason, severity, error }, monotonicNow());
  }

  /** A periodic job with an error boundary: a failing run is counted and logged, the next run comes. */
  private every(ms: number, fn: () => void): void {
    this.intervals.push(
      setInterval(() => {
        try {
          fn();
        } catch (err) {
          this.incident('timer_error', 'error', err);
        }
      }, ms),
    );
  }

  private syncPeers(): void {
    try {
      const changed = this.registry.syncIfChanged(Date.now());
      if (changed) {
        this.records.peersChanged(this.device.peers(), this.registry.size);
        this.log.info(changed, 'peers reloaded');
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'peer reload failed; keeping the current peers');
    }
  }

  private count(reason: string): void {
    this.tunnelCounters.inc(reason);
  }

  get counters(): Record<string, number> {
    return this.tunnelCounters.values;
  }

  get wireguardDrops(): Record<string, number> {
    return this.dropCounters.values;
  }

  get deployment(): Deployment {
    return this.d;
  }

  get routedEgress(): RoutedEgress | null {
    return this.routed;
  }

  get listenPort(): number {
    return this.edge?.port ?? 0;
  }

  /** The WireGuard UDP socket is open (/healthz). */
  get udpUp(): boolean {
    return this.edge !== null;
  }

  /** SIGHUP: the config is read again; a valid policy applies to new flows, an invalid one is logged and the running one stays. */
  reloadPolicy(trigger: string): void {
    this.policy.reloader.reload(trigger);
  }

  /** Before a fatal exit: the last status (with the fault counted), then every log flushed. */
  private async lastWords(): Promise<void> {
    this.dying = true;
    this.statusReport.writeLast();
    await this.stop();
  }

  /** What status.json shows now. */
  status(): StatusSnapshot {
    return this.statusReport.snapshot(monotonicNow());
  }

  /** Idempotent: a fatal exit's last words and a signal may both ask. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const t of this.intervals) clearInterval(t);
    if (this.timer !== null) clearTimeout(this.timer);
    await this.edge?.close();
    this.edge = null;
    await this.http.close();
    const now = monotonicNow();
    this.stack.close(now);
    this.drainStack(now);
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
