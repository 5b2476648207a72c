// The concentrator's own tunnel addresses, as a host answers for itself:
// ICMP echo is answered, UDP goes to the local service on its port (DNS) or
// gets a port unreachable at once, as a host does, so a client does not wait
// for a timeout. TCP to these addresses goes to the flow table (the portal,
// DNS over TCP); other protocols are dropped and counted.
import {
  buildIcmpEcho, buildIcmpUnreachable, buildUdpPacket, IpAddress, isWireError, Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View,
  UdpView, IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, IP_PROTOCOL_UDP, type Icmpv4Message, type Icmpv6Message, type IpPacket,
} from './wire';
import type { Counters } from './counters';
import type { StackOutput } from './output';
import type { FlowOwner } from './owner';

export interface LocalUdpRequest {
  owner: FlowOwner;
  client: IpAddress;
  clientPort: number;
  payload: Buffer;
}

/**
 * A local UDP service; `reply` may be called later (an upstream's answer), at
 * most once per request in practice. `req.payload` is only lent for the call
 * (its packet's memory is reused): a service that keeps it copies it.
 */
export type LocalUdpHandler = (req: LocalUdpRequest, reply: (payload: Buffer) => void) => void;

type IcmpMessage = Icmpv4Message | Icmpv6Message;

export class LocalHost {
  private readonly services = new Map<number, LocalUdpHandler>();

  constructor(
    private readonly ctx: {
      out: StackOutput;
      counters: Counters;
      /** After a service's late reply (outside any call into the stack): tells the edge that output is waiting. */
      settled(): void;
    },
  ) {}

  udpService(port: number, handler: LocalUdpHandler): void {
    this.services.set(port, handler);
  }

  /** A packet to `localAddr` that is not TCP. A service that throws is contained here, counted as local_service_error. */
  receive(pkt: IpPacket, localAddr: IpAddress, owner: FlowOwner): void {
    if (pkt.protocol === IP_PROTOCOL_ICMP && pkt.family === 4) return this.echo(pkt, localAddr, this.echo4Of(pkt));
    if (pkt.protocol === IP_PROTOCOL_ICMPV6 && pkt.family === 6) return this.echo(pkt, localAddr, this.echo6Of(pkt));
    if (pkt.protocol === IP_PROTOCOL_UDP) return this.udp(pkt, localAddr, owner);
    this.ctx.counters.inc(`drop_local_protocol_${pkt.protocol}`);
  }

  private udp(pkt: IpPacket, localAddr: IpAddress, owner: FlowOwner): void {
    const { counters, out } = this.ctx;
    const udp = UdpView.parse(pkt.payload);
    if (isWireError(udp)) {
      counters.inc(`drop_udp_${udp.reason}`);
      return;
    }
    const handler = this.services.get(udp.dstPort);
    if (handler === undefined) {
      counters.inc('drop_local_udp_no_service');
      out.packets.push(buildIcmpUnreachable(localAddr, IpAddress.fromBytes(pkt.src), 'port', pkt.view.buf));
      return;
    }
    const client = IpAddress.fromBytes(pkt.src);
    const clientPort = udp.srcPort;
    const port = udp.dstPort;
    try {
      handler({ owner, client, clientPort, payload: udp.payload }, (payload) => {
        out.packets.push(buildUdpPacket(localAddr, port, client, clientPort, payload));
        this.ctx.settled();
      });
    } catch (err) {
      counters.inc('local_service_error');
      out.events.push({ type: 'incident', incident: { reason: 'local_service_error', severity: 'error', owner, error: err } });
    }
  }

  private echo4Of(pkt: IpPacket): IcmpMessage | null {
    const view = Icmpv4View.parse(pkt.payload);
    const repr = isWireError(view) ? view : Icmpv4Repr.parse(view);
    if (!isWireError(repr)) return repr.message;
    this.ctx.counters.inc(`drop_icmp_${repr.reason}`);
    return null;
  }

  private echo6Of(pkt: IpPacket): IcmpMessage | null {
    const view = Icmpv6View.parse(pkt.payload);
    if (!isWireError(view)) return Icmpv6Repr.parse(view).message;
    this.ctx.counters.inc(`drop_icmp_${view.reason}`);
    return null;
  }

  private echo(pkt: IpPacket, localAddr: IpAddress, msg: IcmpMessage | null): void {
    if (msg === null) return;
    if (msg.kind !== 'echo_request') {
      this.ctx.counters.inc('drop_icmp_not_echo');
      return;
    }
    this.ctx.counters.inc('icmp_echo_replied');
    this.ctx.out.packets.push(buildIcmpEcho(localAddr, IpAddress.fromBytes(pkt.src), 'echo_reply', msg.identifier, msg.sequence, msg.data));
  }
}
