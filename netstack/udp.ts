// UDP flows from tunnel clients: one egress socket per (owner, 5-tuple),
// closed after an idle timeout; replies are wrapped back into IP packets
// addressed to the client with the original addresses and fresh checksums.
import { buildIcmpUnreachable, buildUdpPacket, IpAddress, type IpPacket, type UdpView } from './wire';
import type { UdpEgressFactory, UdpEgressSocket } from './egress/udp_socket';
import { flowKey, type Counters, type FlowOwner } from './owner';
import type { BufferAccount, BufferBudgets } from './budget';

// Enough of the original datagram for any ICMP error quote (RFC 4443 §2.4(c)).
const QUOTE_MAX = 1232;
/** Datagrams waiting in one flow's socket queue beyond this are dropped (the kernel is not taking them). */
const MAX_QUEUED_PER_FLOW = 256 * 1024;

export interface UdpFlowOptions {
  idleTimeoutMs: number;
  maxFlowsPerUser: number;
  /** Buffer budgets per user and overall (unbounded without). */
  budgets?: BufferBudgets;
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
  /** The user's buffer account (null without budgets) and the queued bytes this flow put in it. */
  account: BufferAccount | null;
  held: number;
}

export class UdpFlowTable {
  private readonly flows = new Map<string, UdpFlow>();
  private readonly perUser = new Map<string, number>();
  /** Flows with bytes queued in their socket: re-read on tick until the queue drained. */
  private readonly queued = new Set<UdpFlow>();
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
      if (this.opts.budgets?.refusesNewFlow(owner, 'udp', pkt.dst, udp.dstPort, now)) return;
      flow = this.open(key, pkt, udp, owner, now);
      this.perUser.set(owner.user, count + 1);
    }
    flow.lastActive = now;
    if (flow.held > 0 && (flow.held >= MAX_QUEUED_PER_FLOW || (flow.account !== null && flow.account.room <= 0))) {
      // The socket already holds a backlog the kernel has not taken: queueing more only grows memory.
      this.counters.inc('udp_dropped_queue_full');
      return;
    }
    flow.bytesOut += udp.payload.length;
    flow.socket.send(udp.payload);
    this.counters.inc('udp_out');
    this.account(flow);
  }

  /** Brings the user's account up to date with the bytes waiting in the flow's socket. */
  private account(flow: UdpFlow): void {
    if (flow.account === null) return;
    const held = flow.socket.queuedBytes?.() ?? 0;
    if (held === flow.held) return;
    flow.account.add(held - flow.held);
    flow.held = held;
    if (held > 0) this.queued.add(flow);
    else this.queued.delete(flow);
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
      account: this.opts.budgets?.take(owner.user) ?? null,
      held: 0,
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
    for (const flow of [...this.queued]) this.account(flow);
    this.opts.budgets?.runWakes();
    for (const flow of this.flows.values()) {
      if (now - flow.lastActive >= this.opts.idleTimeoutMs) this.close(flow);
    }
  }

  private close(flow: UdpFlow): void {
    flow.socket.close();
    if (flow.account !== null) {
      flow.account.add(-flow.held);
      flow.held = 0;
      this.queued.delete(flow);
      this.opts.budgets?.release(flow.account);
    }
    this.flows.delete(flow.key);
    const n = (this.perUser.get(flow.owner.user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(flow.owner.user);
    else this.perUser.set(flow.owner.user, n);
    this.counters.inc('udp_flows_closed');
  }

  closeAll(): void {
    for (const flow of [...this.flows.values()]) this.close(flow);
  }
}
