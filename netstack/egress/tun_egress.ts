// Routed mode's split of tunnel traffic (DESIGN.md, egress): one decision
// per packet from a client, before the stack sees it. Sans-IO: the edge
// (vpn/routed) owns the TUN device and the policy.
//
// The stack keeps what it must terminate or answer itself: the concentrator's
// own addresses (DNS, ping, the portal), every packet the egress guard
// refuses (so refusals are answered, counted and logged by the one path that
// does so in both modes), a host address an admin opened with egress.allow
// (the kernel never delivers TUN traffic to its own host: see the nftables
// input filter), QUIC to the inspected ports (refused, so browsers fall back
// to TCP and to inspection), IP fragments (no port a policy could be applied
// to; dropped and counted there as in socket mode), and the TCP flows the
// policy sends to the TLS engine. Everything else, of any IP protocol, is
// written to the TUN unchanged and routed by the kernel: the TTL / hop limit
// is left as the client sent it, since the kernel decrements it when it
// forwards, and the concentrator host is one router hop, as with a kernel
// WireGuard server. A policy block is answered here: a TCP reset, or ICMP
// administratively prohibited.
import {
  buildIcmpUnreachable, buildTcpPacket, IpAddress, isWireError, parseIpPacket, TcpRepr, TcpView,
  IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP, type AddressKey, type IpPacket,
} from '../wire';
import { rstForUnknownSegment } from '../tcp';
import { Counters } from '../counters';
import type { FlowOwner } from '../owner';
import type { EgressGuard } from './guard';

/** What the policy makes of a packet in routed mode. */
export type RoutedAction = 'terminate' | 'route' | 'block';

export interface RoutedVerdict {
  readonly action: RoutedAction;
  /** The policy rule that decided (for records); '' when no rule did. */
  readonly rule: string;
}

/**
 * The policy for one packet. `protocol` is the IP protocol number, `dst` a
 * view into the packet (read it during the call only), `dstPort` -1 for
 * protocols without ports.
 */
export type RoutedPolicy = (owner: FlowOwner, protocol: number, dst: Buffer, dstPort: number) => RoutedVerdict;

/** A packet the policy blocked (already answered and counted). */
export interface PolicyBlock {
  owner: FlowOwner;
  protocol: number;
  /** Destination address bytes: a view into the packet, valid only during the call. */
  dst: Buffer;
  dstPort: number;
  rule: string;
}

export interface TunEgressOptions {
  /** The concentrator's own tunnel addresses (answered by the stack). */
  localAddresses: IpAddress[];
  guard: EgressGuard;
  /** UDP ports the stack refuses (QUIC on the inspected ports when tls.blockQuic). */
  blockedUdpPorts: readonly number[];
  decide: RoutedPolicy;
  /** Writes packets[0..count) to the TUN; returns how many it took (the rest were dropped). */
  writeTun(packets: Buffer[], count: number): number;
  /** A packet to the tunnel client that sent the blocked one. */
  toClient(packet: Buffer): void;
  /** Sends a packet the kernel routed into the TUN to the peer owning its destination; false when no peer does. */
  toPeer(packet: Buffer): boolean;
  onBlocked?(b: PolicyBlock): void;
  /** Runs the write flush once the current burst of tunnel packets is handled (default queueMicrotask). */
  defer?(fn: () => void): void;
}

/** Packets per TUN write call at most (the addon's batch). */
const WRITE_BATCH = 64;
const ICMPV4_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;
const IPV4_MIN = 20;
const IPV6_MIN = 40;

export class TunEgress {
  private readonly counterSet = new Counters();
  private readonly local = new Set<AddressKey>();
  private readonly icmpSource: { 4: IpAddress | undefined; 6: IpAddress | undefined };
  private readonly blockedUdp: Set<number>;
  private readonly pending: Buffer[] = [];
  private flushQueued = false;
  private readonly defer: (fn: () => void) => void;

  constructor(private readonly opts: TunEgressOptions) {
    for (const a of opts.localAddresses) this.local.add(a.key);
    this.icmpSource = { 4: opts.localAddresses.find((a) => a.family === 4), 6: opts.localAddresses.find((a) => a.family === 6) };
    this.blockedUdp = new Set(opts.blockedUdpPorts);
    this.defer = opts.defer ?? queueMicrotask;
  }

  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  /**
   * One packet from a tunnel client (its source already checked). True when
   * it was routed into the TUN or blocked here; false: the stack handles it.
   * Never throws for any input. A routed packet is kept, not copied, until
   * the flush at the end of the burst (a microtask by default): the
   * concentrator reuses a received packet's memory only in its next receive
   * batch (WgDevice.recyclePackets).
   */
  take(packet: Buffer, owner: FlowOwner): boolean {
    const pkt = parseIpPacket(packet);
    if (isWireError(pkt) || this.local.has(pkt.view.dstKey)) return false;
    const dstPort = portOf(pkt);
    const guard = this.opts.guard;
    if (guard.checkBytes(pkt.dst, 0, pkt.family, pkt.protocol, dstPort) !== null) return false;
    if (guard.isSelfBytes(pkt.dst, 0, pkt.family)) return false;
    if (pkt.protocol === IP_PROTOCOL_UDP && this.blockedUdp.has(dstPort)) return false;
    const verdict = this.opts.decide(owner, pkt.protocol, pkt.dst, dstPort);
    if (verdict.action === 'terminate') {
      this.counterSet.inc('terminated');
      return false;
    }
    if (verdict.action === 'block') {
      this.block(pkt, owner, dstPort, verdict.rule);
      return true;
    }
    this.pending.push(packet);
    if (this.pending.length >= WRITE_BATCH) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      this.defer(this.flushNow);
    }
    return true;
  }

  /** Writes what take() queued; called at the end of a burst (and when a batch is full). */
  flush(): void {
    const n = this.pending.length;
    if (n === 0) return;
    const written = this.opts.writeTun(this.pending, n);
    this.counterSet.inc('to_tun', written);
    if (written < n) this.counterSet.inc('to_tun_dropped', n - written);
    this.pending.length = 0;
  }

  private readonly flushNow = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  /** One packet the kernel routed into the TUN: to the peer that owns its destination. */
  fromTun(packet: Buffer): void {
    const family = packet.length > 0 ? packet[0] >> 4 : 0;
    if (!((family === 4 && packet.length >= IPV4_MIN) || (family === 6 && packet.length >= IPV6_MIN))) {
      this.counterSet.inc('from_tun_invalid');
      return;
    }
    if (this.opts.toPeer(packet)) this.counterSet.inc('from_tun');
    else this.counterSet.inc('from_tun_no_peer');
  }

  /** Issue 9's answers to a block: a TCP reset, or ICMP administratively prohibited for what a client waits on. */
  private block(pkt: IpPacket, owner: FlowOwner, dstPort: number, rule: string): void {
    this.counterSet.inc('policy_block');
    const reply = blockAnswer(pkt, this.icmpSource[pkt.family]);
    if (reply !== null) this.opts.toClient(reply);
    this.opts.onBlocked?.({ owner, protocol: pkt.protocol, dst: pkt.dst, dstPort, rule });
  }
}

/** The TCP or UDP destination port (the same offset in both headers), or -1. */
function portOf(pkt: IpPacket): number {
  if ((pkt.protocol !== IP_PROTOCOL_TCP && pkt.protocol !== IP_PROTOCOL_UDP) || pkt.payload.length < 4) return -1;
  return pkt.payload.readUInt16BE(2);
}

function blockAnswer(pkt: IpPacket, from: IpAddress | undefined): Buffer | null {
  const client = IpAddress.fromBytes(pkt.src);
  if (pkt.protocol === IP_PROTOCOL_TCP) {
    const view = TcpView.parse(pkt.payload);
    const seg = isWireError(view) ? view : TcpRepr.parse(view);
    const rst = isWireError(seg) ? null : rstForUnknownSegment(seg);
    return rst === null ? null : buildTcpPacket(IpAddress.fromBytes(pkt.dst), client, rst);
  }
  const p = pkt.payload;
  const waits = pkt.protocol === IP_PROTOCOL_UDP
    || (pkt.family === 4 && pkt.protocol === IP_PROTOCOL_ICMP && p.length > 0 && p[0] === ICMPV4_ECHO_REQUEST)
    || (pkt.family === 6 && pkt.protocol === IP_PROTOCOL_ICMPV6 && p.length > 0 && p[0] === ICMPV6_ECHO_REQUEST);
  return waits && from !== undefined ? buildIcmpUnreachable(from, client, 'admin_prohibited', pkt.view.buf) : null;
}
