// The userspace network stack's entry point: packets from tunnel clients come
// in tagged with their owner; replies and flow traffic are returned in the
// stack's output (StackOutput) as IP packets addressed to the client, with
// what it reports and when it wants tick(). Packets to the concentrator's
// own addresses are answered as a host (local.ts: ICMP echo, DNS) or go to
// its TCP services; UDP and TCP elsewhere become flows re-originated from OS
// sockets (udp.ts, tcp_flows.ts). Every other packet passes the egress guard
// first (DESIGN.md, the trust boundary): a refused one is answered with ICMP
// administratively prohibited.
import {
  buildIcmpUnreachable,
  IpAddress,
  isWireError,
  parseIpPacket,
  verifyUpperLayerChecksum,
  IP_PROTOCOL_ICMP,
  IP_PROTOCOL_ICMPV6,
  IP_PROTOCOL_TCP,
  IP_PROTOCOL_UDP,
  RST,
  TcpRepr,
  TcpView,
  UdpView,
  type AddressKey,
  type IpPacket,
} from './wire';
import { osUdpEgress, type UdpEgressFactory } from './egress/udp_socket';
import { LocalHost, type LocalUdpHandler } from './local';
import { monotonicNow, type Clock } from './clock';
import { Counters } from './counters';
import { StackOutput } from './output';
import type { FlowOwner } from './owner';
import { UdpFlowTable, type UdpFlowOptions } from './udp';
import { TcpFlowTable, type TcpFlowHandler, type TcpFlowInfo, type TcpFlowOptions } from './tcp_flows';
import { socketEgress } from './egress/tcp_socket';
import { processFds, type FdGate } from './egress/fd_budget';
import type { StackIncident } from './incident';
import { EGRESS_REFUSALS, type EgressGuard, type EgressRefusal, type EgressVerdict } from './egress/guard';
import { BufferBudgets, type BufferLimits } from './budget';

const CONNECT_TIMEOUT_MS = 10_000;
const ICMPV4_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;
// The byte holding RST in a TCP header (RFC 9293 §3.1).
const TCP_FLAGS_BYTE = 13;
// Counter names built once: the refusal path runs per packet under a flood.
const DENIED_COUNTER = Object.fromEntries(EGRESS_REFUSALS.map((r) => [r, `egress_denied_${r}`])) as Record<EgressRefusal, string>;

export interface NetStackOptions {
  /** The concentrator's own tunnel addresses. */
  localAddresses: IpAddress[];
  /** Consulted for every packet not addressed to the concentrator itself. */
  guard: EgressGuard;
  /**
   * Output was added outside any call (an upstream's data or connect, a
   * socket's reply, a local service's answer), or its wakeAt came earlier:
   * the edge should take `stack.output` now. Not called for what a call
   * returns.
   */
  onOutput?: () => void;
  /**
   * The clock of the stack's own I/O edge (upstream connects and streams),
   * read when their I/O completes outside a call (default monotonicNow).
   */
  clock?: Clock;
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
  /**
   * Policy for flows without a handshake, asked at the first datagram of a
   * UDP flow and for each ICMP echo request leaving the concentrator (never
   * for its own services, DNS included): false refuses it with ICMP
   * administratively prohibited. `dst` is a view into the packet.
   */
  admit?: (owner: FlowOwner, protocol: 'udp' | 'icmp', dst: Buffer, dstPort: number) => boolean;
  /** Asked before each new flow opens a socket (default: this process's descriptor budget). */
  fds?: FdGate;
  /** Bytes the flows of one user, and of all users, may buffer (unbounded without). */
  bufferLimits?: BufferLimits;
}

export class NetStack {
  /** What the stack produced and the edge has not taken yet (see StackOutput). */
  readonly output = new StackOutput();
  private readonly counterSet = new Counters();
  /** Calls in progress: output added during one is returned by it, so the edge is not told. */
  private depth = 0;
  private readonly local = new Map<AddressKey, IpAddress>();
  /** Where ICMP errors about refused packets come from: the concentrator, as the refusing router. */
  private readonly icmpSource: { 4: IpAddress | undefined; 6: IpAddress | undefined };
  private readonly localHost: LocalHost;
  private readonly udp: UdpFlowTable;
  private readonly tcp: TcpFlowTable;
  /** Buffer accounting per user and overall (null without bufferLimits). */
  readonly budgets: BufferBudgets | null;

  constructor(private readonly opts: NetStackOptions) {
    for (const a of opts.localAddresses) this.local.set(a.key, a);
    const fds = opts.fds ?? processFds;
    const out = this.output;
    this.icmpSource = { 4: opts.localAddresses.find((a) => a.family === 4), 6: opts.localAddresses.find((a) => a.family === 6) };
    this.budgets = opts.bufferLimits ? new BufferBudgets(opts.bufferLimits, this.counterSet, (record) => out.events.push({ type: 'budget_refusal', record })) : null;
    const budget = this.budgets ? { budgets: this.budgets } : {};
    const admit = opts.admit;
    const admitUdp = admit && ((owner: FlowOwner, pkt: IpPacket, dstPort: number): boolean => admit(owner, 'udp', pkt.dst, dstPort) || this.prohibit(pkt, 'udp_policy_block'));
    const ctx = { out, counters: this.counterSet, fds, settled: this.settled };
    this.localHost = new LocalHost(ctx);
    this.udp = new UdpFlowTable({ ...opts.udp, ...budget }, opts.udpEgress ?? osUdpEgress, ctx, admitUdp);
    this.tcp = new TcpFlowTable({ ...opts.tcp, ...budget }, { ...ctx, handlerFor: (info) => this.tcpHandlerFor(info), edgeClock: opts.clock ?? monotonicNow });
  }

  /**
   * Work outside any call is done: the edge is told when it added output or
   * brought a deadline earlier than the one the edge was last given (an
   * upstream's data armed a retransmission timer).
   */
  private readonly settled = (): void => {
    if (this.depth > 0) return;
    const out = this.output;
    const wake = this.nextWakeAt();
    const earlier = wake !== null && (out.wakeAt === null || wake < out.wakeAt);
    if (out.packets.length === 0 && out.events.length === 0 && !earlier) return;
    out.wakeAt = wake;
    this.opts.onOutput?.();
  };

  private report(incident: StackIncident): void {
    this.output.events.push({ type: 'incident', incident });
  }

  private toClient(packet: Buffer): void {
    this.output.packets.push(packet);
  }

  /** Every call returns the output with its wake time; output added meanwhile by other work is in it too. */
  private done(): StackOutput {
    this.depth--;
    this.output.wakeAt = this.nextWakeAt();
    return this.output;
  }

  /** When tick() is next due: the earliest TCP timer, or the UDP sweep while UDP flows are open (null: neither). */
  nextWakeAt(): number | null {
    const tcp = this.tcp.nextWakeAt();
    const udp = this.udp.nextWakeAt();
    return tcp === null ? udp : udp === null ? tcp : Math.min(tcp, udp);
  }

  /**
   * The stack's outer error boundary: a bug outside any flow (parsing,
   * dispatch) drops the packet, counted and reported; flows have their own.
   */
  private contain(reason: string, err: unknown, owner?: FlowOwner): void {
    this.counterSet.inc(reason);
    this.report({ reason, severity: 'error', owner, error: err });
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



  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  udpService(port: number, handler: LocalUdpHandler): void {
    this.localHost.udpService(port, handler);
  }

  /** One packet from a tunnel client. Never throws. */
  receive(packet: Buffer, owner: FlowOwner, now: number): StackOutput {
    this.depth++;
    try {
      this.dispatch(packet, owner, now);
    } catch (err) {
      this.contain('stack_error', err, owner);
    }
    return this.done();
  }

  private dispatch(packet: Buffer, owner: FlowOwner, now: number): void {
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
      if (pkt.protocol === IP_PROTOCOL_TCP) this.tcpPacket(pkt, owner, true, now);
      else this.localHost.receive(pkt, localAddr, owner);
      return;
    }
    const dstPort = upperLayerDstPort(pkt);
    const verdict = this.opts.guard.checkBytes(pkt.dst, 0, pkt.family, pkt.protocol, dstPort);
    if (verdict !== null) {
      this.refuseEgress(pkt, owner, dstPort, verdict);
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
          this.toClient(buildIcmpUnreachable(IpAddress.fromBytes(pkt.dst), IpAddress.fromBytes(pkt.src), 'port', pkt.view.buf));
          return;
        }
        this.udp.onPacket(pkt, udp, owner, now);
        return;
      }
      case IP_PROTOCOL_TCP:
        this.tcpPacket(pkt, owner, false, now);
        return;
      default:
        if (this.opts.admit && isEchoRequest(pkt) && !this.opts.admit(owner, 'icmp', pkt.dst, 0)) {
          this.prohibit(pkt, 'icmp_policy_block');
          return;
        }
        // Unprivileged sockets cannot originate ICMP or other protocols.
        this.counterSet.inc(`drop_egress_protocol_${pkt.protocol}`);
    }
  }

  /** A packet policy refused: counted, answered with admin-prohibited from the concentrator (as a filtering router). Returns false. */
  private prohibit(pkt: IpPacket, reason: string): false {
    this.counterSet.inc(reason);
    const from = this.icmpSource[pkt.family];
    if (from !== undefined) this.toClient(buildIcmpUnreachable(from, IpAddress.fromBytes(pkt.src), 'admin_prohibited', pkt.view.buf));
    return false;
  }

  private tcpPacket(pkt: IpPacket, owner: FlowOwner, local: boolean, now: number): void {
    const view = TcpView.parse(pkt.payload);
    const seg = isWireError(view) ? view : TcpRepr.parse(view);
    if (isWireError(seg)) {
      this.counterSet.inc(`drop_tcp_${seg.reason}`);
      return;
    }
    this.tcp.onPacket(pkt, seg, owner, local, now);
  }

  /**
   * Counts, answers and reports a packet the guard refused. The ICMP error
   * comes from the concentrator's own tunnel address, as from a filtering
   * router: the client drops errors from loopback or multicast sources as
   * martians. Only what a client waits on is answered (a SYN or other TCP
   * segment but a reset, UDP, an echo request); never an ICMP error.
   */
  private refuseEgress(pkt: IpPacket, owner: FlowOwner, dstPort: number, verdict: EgressVerdict): void {
    this.counterSet.inc(DENIED_COUNTER[verdict.reason]);
    const from = this.icmpSource[pkt.family];
    if (from !== undefined && answersRefusal(pkt)) {
      this.toClient(buildIcmpUnreachable(from, IpAddress.fromBytes(pkt.src), 'admin_prohibited', pkt.view.buf));
    }
    this.output.events.push({ type: 'egress_denied', denial: { owner, protocol: pkt.protocol, family: pkt.family, dst: pkt.dst, dstPort, verdict } });
  }

  /**
   * The edge feeds a batch of packets (one recvmmsg): until endBatch(), the
   * ACK a TCP flow owes for every second segment waits for the batch's end,
   * so one ACK covers all of a flow's in-order segments in it. ACKs the
   * RFCs want at once (out of order, duplicate, FIN) still go at once.
   */
  beginBatch(): void {
    this.tcp.batching = true;
  }

  /** The batch is over: the held ACKs are sent. Never throws. */
  endBatch(now: number): StackOutput {
    this.depth++;
    try {
      this.tcp.endBatch(now);
    } catch (err) {
      this.contain('stack_error', err);
    }
    return this.done();
  }

  /**
   * Every packet the stack has put in its output so far has been read and let
   * go (sealed, copied or dropped): the TCP flows write later segments over
   * them (PacketArena.recycle). The edge calls it once the output is drained;
   * without the call nothing is reused.
   */
  recyclePackets(): void {
    this.tcp.recyclePackets();
  }

  /** Runs flow timers. Never throws. */
  tick(now: number): StackOutput {
    this.depth++;
    try {
      this.udp.tick(now);
      this.tcp.tick(now);
    } catch (err) {
      this.contain('stack_error', err);
    }
    return this.done();
  }

  /** Ends every TCP and UDP flow of one owner (its tunnel was cut); TCP records (in the output) end with `reason`. */
  closeFlowsOf(ownerId: string, reason: string, now: number): { tcp: number; udp: number } {
    this.depth++;
    try {
      return { tcp: this.tcp.closeOwner(ownerId, reason, now), udp: this.udp.closeOwner(ownerId) };
    } finally {
      this.done();
    }
  }

  close(now: number): StackOutput {
    this.depth++;
    try {
      this.udp.closeAll();
      this.tcp.closeAll(now);
    } catch (err) {
      this.contain('stack_error', err);
    }
    return this.done();
  }
}

/** The TCP or UDP destination port (the same offset in both headers), or -1. */
function upperLayerDstPort(pkt: IpPacket): number {
  if ((pkt.protocol !== IP_PROTOCOL_TCP && pkt.protocol !== IP_PROTOCOL_UDP) || pkt.payload.length < 4) return -1;
  return pkt.payload.readUInt16BE(2);
}

function answersRefusal(pkt: IpPacket): boolean {
  const p = pkt.payload;
  switch (pkt.protocol) {
    case IP_PROTOCOL_UDP:
      return true;
    case IP_PROTOCOL_TCP:
      return p.length > TCP_FLAGS_BYTE && (p[TCP_FLAGS_BYTE] & RST) === 0;
    default:
      return isEchoRequest(pkt);
  }
}

function isEchoRequest(pkt: IpPacket): boolean {
  const p = pkt.payload;
  if (pkt.protocol === IP_PROTOCOL_ICMP) return pkt.family === 4 && p.length > 0 && p[0] === ICMPV4_ECHO_REQUEST;
  if (pkt.protocol === IP_PROTOCOL_ICMPV6) return pkt.family === 6 && p.length > 0 && p[0] === ICMPV6_ECHO_REQUEST;
  return false;
}
