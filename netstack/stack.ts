// The userspace network stack's entry point: packets from tunnel clients come
// in tagged with their owner; replies and flow traffic go out through
// `toClient` as IP packets addressed to the client. ICMP echo to the
// concentrator's own addresses is answered here; UDP to a local service port
// (DNS) goes to its handler; other UDP is re-originated from OS sockets.
import { performance } from 'node:perf_hooks';
import {
  buildIcmpEcho,
  buildIcmpUnreachable,
  buildUdpPacket,
  IpAddress,
  isWireError,
  parseIpPacket,
  verifyUpperLayerChecksum,
  Icmpv4Repr,
  Icmpv4View,
  Icmpv6Repr,
  Icmpv6View,
  IP_PROTOCOL_ICMP,
  IP_PROTOCOL_ICMPV6,
  IP_PROTOCOL_TCP,
  IP_PROTOCOL_UDP,
  parseTcpRepr,
  TcpView,
  UdpView,
  type AddressKey,
  type IpCidr,
  type IpPacket,
} from './wire';
import { osUdpEgress, type UdpEgressFactory } from './egress/udp_socket';
import { Counters, type FlowOwner } from './owner';
import { UdpFlowTable, type UdpFlowOptions } from './udp';
import { TcpFlowTable, type FlowRecord, type TcpFlowHandler, type TcpFlowInfo, type TcpFlowOptions } from './tcp_flows';
import { socketEgress } from './egress/tcp_socket';
import { BufferBudgets, type BudgetRefusalRecord, type BufferLimits } from './budget';

const CONNECT_TIMEOUT_MS = 10_000;

export interface LocalUdpRequest {
  owner: FlowOwner;
  client: IpAddress;
  clientPort: number;
  payload: Buffer;
}

export type LocalUdpHandler = (req: LocalUdpRequest, reply: (payload: Buffer) => void) => void;

export interface NetStackOptions {
  /** The concentrator's own tunnel addresses. */
  localAddresses: IpAddress[];
  /** Destinations never forwarded (the tunnel pools: peers cannot reach each other). */
  forbiddenNetworks: IpCidr[];
  toClient(packet: Buffer): void;
  udp: UdpFlowOptions;
  udpEgress?: UdpEgressFactory;
  tcp: TcpFlowOptions;
  /**
   * Chooses who opens the upstream of a new TCP flow. Return undefined for
   * the default (socket egress; local destinations are refused), null to refuse.
   */
  tcpHandler?: (flow: TcpFlowInfo) => TcpFlowHandler | null | undefined;
  /**
   * UDP destination ports refused with an ICMP port unreachable, so clients
   * fall back at once (QUIC on the inspected ports falls back to TCP).
   */
  blockedUdpPorts?: number[];
  /** Every ended flow, for the per-user logs. */
  onFlowEnd?: (r: FlowRecord) => void;
  /** Monotonic clock in ms (performance.now by default). */
  clock?: () => number;
  /** Called with each new timer deadline (ms); the edge should tick by then. */
  onWake?: (at: number) => void;
  /** Bytes the flows of one user, and of all users, may buffer (unbounded without). */
  bufferLimits?: BufferLimits;
  /** A new flow refused for lack of buffer room (rate-limited per user), for the user's log. */
  onBudgetRefusal?: (r: BudgetRefusalRecord) => void;
}

export class NetStack {
  private readonly counterSet = new Counters();
  private readonly local = new Map<AddressKey, IpAddress>();
  private readonly services = new Map<number, LocalUdpHandler>();
  private readonly udp: UdpFlowTable;
  private readonly tcp: TcpFlowTable;
  /** Buffer accounting per user and overall (null without bufferLimits). */
  readonly budgets: BufferBudgets | null;

  constructor(private readonly opts: NetStackOptions) {
    for (const a of opts.localAddresses) this.local.set(a.key, a);
    this.budgets = opts.bufferLimits ? new BufferBudgets(opts.bufferLimits, this.counterSet, opts.onBudgetRefusal) : null;
    const budget = this.budgets ? { budgets: this.budgets } : {};
    this.udp = new UdpFlowTable({ ...opts.udp, ...budget }, opts.udpEgress ?? osUdpEgress, opts.toClient, this.counterSet);
    const clock = opts.clock ?? (() => performance.now());
    this.tcp = new TcpFlowTable({ ...opts.tcp, ...budget }, (info) => this.tcpHandlerFor(info), opts.toClient, this.counterSet, opts.onFlowEnd ?? (() => undefined), clock, opts.onWake);
  }

  private tcpHandlerFor(info: TcpFlowInfo): TcpFlowHandler | null {
    const chosen = this.opts.tcpHandler?.(info);
    if (chosen !== undefined) return chosen;
    if (info.local) return null;
    return (flow) => socketEgress(flow.dst.toString(), flow.dstPort, CONNECT_TIMEOUT_MS);
  }

  get tcpFlows(): number {
    return this.tcp.size;
  }

  /** Earliest TCP timer deadline, so the edge can wake up for it. */
  nextWakeAt(): number | null {
    return this.tcp.nextWakeAt();
  }

  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  udpService(port: number, handler: LocalUdpHandler): void {
    this.services.set(port, handler);
  }

  receive(packet: Buffer, owner: FlowOwner, now: number): void {
    const pkt = parseIpPacket(packet);
    if (isWireError(pkt)) {
      this.counterSet.inc(`drop_${pkt.reason}`);
      return;
    }
    if (!verifyUpperLayerChecksum(pkt)) {
      this.counterSet.inc('drop_bad_l4_checksum');
      return;
    }
    const localAddr = this.local.get(pkt.view.dstKey);
    if (localAddr !== undefined) {
      this.toLocal(pkt, localAddr, owner, now);
      return;
    }
    if (this.isForbidden(pkt)) {
      this.counterSet.inc('drop_peer_to_peer');
      return;
    }
    switch (pkt.protocol) {
      case IP_PROTOCOL_UDP: {
        const udp = UdpView.parse(pkt.payload);
        if (isWireError(udp)) {
          this.counterSet.inc(`drop_udp_${udp.reason}`);
          return;
        }
        if (this.opts.blockedUdpPorts?.includes(udp.dstPort)) {
          this.counterSet.inc('udp_blocked_port');
          this.opts.toClient(buildIcmpUnreachable(IpAddress.fromBytes(pkt.dst), IpAddress.fromBytes(pkt.src), 'port', pkt.view.buf));
          return;
        }
        this.udp.onPacket(pkt, udp, owner, now);
        return;
      }
      case IP_PROTOCOL_TCP:
        this.tcpPacket(pkt, owner, false, now);
        return;
      default:
        // Unprivileged sockets cannot originate ICMP or other protocols.
        this.counterSet.inc(`drop_egress_protocol_${pkt.protocol}`);
    }
  }

  private tcpPacket(pkt: IpPacket, owner: FlowOwner, local: boolean, now: number): void {
    const view = TcpView.parse(pkt.payload);
    const seg = isWireError(view) ? view : parseTcpRepr(view);
    if (isWireError(seg)) {
      this.counterSet.inc(`drop_tcp_${seg.reason}`);
      return;
    }
    this.tcp.onPacket(pkt, seg, owner, local, now);
  }

  /** On every forwarded packet: match the destination bytes in place, no allocation. */
  private isForbidden(pkt: IpPacket): boolean {
    for (const n of this.opts.forbiddenNetworks) if (n.containsBytes(pkt.dst, 0, pkt.family)) return true;
    return false;
  }

  private toLocal(pkt: IpPacket, localAddr: IpAddress, owner: FlowOwner, now: number): void {
    if (pkt.protocol === IP_PROTOCOL_ICMP && pkt.family === 4) return this.echo4(pkt, localAddr);
    if (pkt.protocol === IP_PROTOCOL_ICMPV6 && pkt.family === 6) return this.echo6(pkt, localAddr);
    if (pkt.protocol === IP_PROTOCOL_UDP) {
      const udp = UdpView.parse(pkt.payload);
      if (isWireError(udp)) {
        this.counterSet.inc(`drop_udp_${udp.reason}`);
        return;
      }
      const handler = this.services.get(udp.dstPort);
      if (handler === undefined) {
        this.counterSet.inc('drop_local_udp_no_service');
        return;
      }
      const client = IpAddress.fromBytes(pkt.src);
      const clientPort = udp.srcPort;
      const port = udp.dstPort;
      handler({ owner, client, clientPort, payload: udp.payload }, (payload) => {
        this.opts.toClient(buildUdpPacket(localAddr, port, client, clientPort, payload));
      });
      return;
    }
    if (pkt.protocol === IP_PROTOCOL_TCP) return this.tcpPacket(pkt, owner, true, now);
    this.counterSet.inc(`drop_local_protocol_${pkt.protocol}`);
  }

  private echo4(pkt: IpPacket, localAddr: IpAddress): void {
    const view = Icmpv4View.parse(pkt.payload);
    const repr = isWireError(view) ? view : Icmpv4Repr.parse(view);
    if (isWireError(repr)) {
      this.counterSet.inc(`drop_icmp_${repr.reason}`);
      return;
    }
    if (repr.kind !== 'echo_request') {
      this.counterSet.inc('drop_icmp_not_echo');
      return;
    }
    this.counterSet.inc('icmp_echo_replied');
    this.opts.toClient(buildIcmpEcho(localAddr, IpAddress.fromBytes(pkt.src), 'echo_reply', repr.identifier, repr.sequence, repr.data));
  }

  private echo6(pkt: IpPacket, localAddr: IpAddress): void {
    const view = Icmpv6View.parse(pkt.payload);
    if (isWireError(view)) {
      this.counterSet.inc(`drop_icmp_${view.reason}`);
      return;
    }
    const repr = Icmpv6Repr.parse(view);
    if (repr.kind !== 'echo_request') {
      this.counterSet.inc('drop_icmp_not_echo');
      return;
    }
    this.counterSet.inc('icmp_echo_replied');
    this.opts.toClient(buildIcmpEcho(localAddr, IpAddress.fromBytes(pkt.src), 'echo_reply', repr.identifier, repr.sequence, repr.data));
  }

  tick(now: number): void {
    this.udp.tick(now);
    this.tcp.tick(now);
  }

  close(): void {
    this.udp.closeAll();
    this.tcp.closeAll();
  }
}
