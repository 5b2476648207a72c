// UDP flows from tunnel clients: one egress socket per (owner, 5-tuple),
// closed after an idle timeout; replies are wrapped back into IP packets
// addressed to the client with the original addresses and fresh checksums.
import { buildIcmpUnreachable, buildUdpPacket, IpAddress, type IpPacket, type UdpView } from './wire';
import type { UdpEgressFactory, UdpEgressSocket } from './egress/udp_socket';
import { flowKey, type Counters, type FlowOwner } from './owner';

// Enough of the original datagram for any ICMP error quote (RFC 4443 §2.4(c)).
const QUOTE_MAX = 1232;

export interface UdpFlowOptions {
  idleTimeoutMs: number;
  maxFlowsPerUser: number;
}

interface UdpFlow {
  key: string;
  owner: FlowOwner;
  client: IpAddress;
  clientPort: number;
  remote: IpAddress;
  remotePort: number;
  socket: UdpEgressSocket;
  lastActive: number;
  bytesOut: number;
  bytesIn: number;
}

export class UdpFlowTable {
  private readonly flows = new Map<string, UdpFlow>();
  private readonly perUser = new Map<string, number>();
  private now = 0;

  constructor(
    private readonly opts: UdpFlowOptions,
    private readonly egress: UdpEgressFactory,
    private readonly toClient: (packet: Buffer) => void,
    private readonly counters: Counters,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  onPacket(pkt: IpPacket, udp: UdpView, owner: FlowOwner, now: number): void {
    this.now = now;
    const key = flowKey(owner, pkt.src, udp.srcPort, pkt.dst, udp.dstPort);
    let flow = this.flows.get(key);
    if (flow === undefined) {
      const count = this.perUser.get(owner.user) ?? 0;
      if (count >= this.opts.maxFlowsPerUser) {
        this.counters.inc('udp_flow_limit');
        return;
      }
      flow = this.open(key, pkt, udp, owner, now);
      this.perUser.set(owner.user, count + 1);
    }
    flow.lastActive = now;
    flow.bytesOut += udp.payload.length;
    flow.socket.send(udp.payload);
    this.counters.inc('udp_out');
  }

  private open(key: string, pkt: IpPacket, udp: UdpView, owner: FlowOwner, now: number): UdpFlow {
    const client = IpAddress.fromBytes(pkt.src);
    const remote = IpAddress.fromBytes(pkt.dst);
    const flow: UdpFlow = {
      key,
      owner,
      client,
      clientPort: udp.srcPort,
      remote,
      remotePort: udp.dstPort,
      socket: null as unknown as UdpEgressSocket,
      lastActive: now,
      bytesOut: 0,
      bytesIn: 0,
    };
    // The original datagram, kept only until the socket proves reachable, to quote in an ICMP error.
    let firstPacket: Buffer | null = Buffer.from(pkt.view.buf.subarray(0, QUOTE_MAX));
    flow.socket = this.egress(pkt.family, remote.toString(), udp.dstPort, {
      onMessage: (payload) => {
        firstPacket = null;
        flow.lastActive = this.now;
        flow.bytesIn += payload.length;
        this.counters.inc('udp_in');
        this.toClient(buildUdpPacket(flow.remote, flow.remotePort, flow.client, flow.clientPort, payload));
      },
      onError: (code) => {
        this.counters.inc(`udp_egress_${code.toLowerCase()}`);
        if (code === 'ECONNREFUSED' && firstPacket !== null) {
          // Port unreachable upstream: tell the client at once instead of letting it time out.
          this.toClient(buildIcmpUnreachable(flow.remote, flow.client, 'port', firstPacket));
        }
      },
    });
    this.flows.set(key, flow);
    this.counters.inc('udp_flows_opened');
    return flow;
  }

  /** Closes idle flows. */
  tick(now: number): void {
    this.now = now;
    for (const flow of this.flows.values()) {
      if (now - flow.lastActive >= this.opts.idleTimeoutMs) this.close(flow);
    }
  }

  private close(flow: UdpFlow): void {
    flow.socket.close();
    this.flows.delete(flow.key);
    const n = (this.perUser.get(flow.owner.user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(flow.owner.user);
    else this.perUser.set(flow.owner.user, n);
    this.counters.inc('udp_flows_closed');
  }

  closeOwner(ownerId: string): number {
    let n = 0;
    for (const flow of [...this.flows.values()]) {
      if (flow.owner.id !== ownerId) continue;
      this.close(flow);
      n++;
    }
    return n;
  }

  closeAll(): void {
    for (const flow of [...this.flows.values()]) this.close(flow);
  }
}
