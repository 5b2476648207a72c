// UDP flows from tunnel clients: one egress socket per (owner, 5-tuple),
// closed after an idle timeout; replies are wrapped back into IP packets
// addressed to the client with the original addresses and fresh checksums.
//
// Every callback of a flow's socket is an error boundary: whatever fails in
// one flow (its socket could not connect, a bug in handling its datagrams)
// closes that flow, is counted by reason and reported, and goes no further.
import { buildIcmpUnreachable, buildUdpPacket, IpAddress, mayReportUnreachable, ownCopy, type IpPacket, type UdpView, type UnreachableReason } from './wire';
import type { UdpEgressFactory, UdpEgressSocket } from './egress/udp_socket';
import type { FdGate } from './egress/fd_budget';
import type { Counters } from './counters';
import { describeFlow, type StackIncident } from './incident';
import type { StackOutput } from './output';
import { flowKey, type FlowOwner } from './owner';
import type { BufferAccount, BufferBudgets } from './budget';

// Enough of the original datagram for any ICMP error quote (RFC 4443 §2.4(c)).
const QUOTE_MAX = 1232;
/** Held in one flow's socket queue (bytes and a cost per datagram) beyond this, datagrams are dropped (the kernel is not taking them). */
const MAX_QUEUED_PER_FLOW = 256 * 1024;
/** While flows are open, tick() looks this often for idle ones and for queued bytes the kernel took. */
export const UDP_SWEEP_MS = 100;

/** What the client is told when its flow's socket cannot connect (the kernel's own ICMP mapping, reversed). */
const UNREACHABLE_FOR: Readonly<Record<string, UnreachableReason>> = {
  ENETUNREACH: 'net',
  EHOSTUNREACH: 'host',
  EHOSTDOWN: 'host',
  ECONNREFUSED: 'port',
};

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
  socket: UdpEgressSocket | null;
  lastActive: number;
  bytesOut: number;
  bytesIn: number;
  /** The first datagram, kept only until the remote proves reachable, to quote in an ICMP error. */
  quote: Buffer | null;
  /** The user's buffer account (null without budgets) and the queued bytes this flow put in it. */
  account: BufferAccount | null;
  held: number;
}

export class UdpFlowTable {
  private readonly flows = new Map<string, UdpFlow>();
  private readonly perUser = new Map<string, number>();
  /** Flows with bytes queued in their socket: re-read on tick until the queue drained. */
  private readonly queued = new Set<UdpFlow>();
  /** The last `now` the table was given: a reply's socket event carries none. */
  private now = 0;
  private sweptAt = -Infinity;
  private readonly counters: Counters;

  constructor(
    private readonly opts: UdpFlowOptions,
    private readonly egress: UdpEgressFactory,
    private readonly ctx: {
      out: StackOutput;
      counters: Counters;
      fds: FdGate;
      /** After a socket event (outside any call into the stack): tells the edge that output is waiting. */
      settled(): void;
    },
    /** Policy at a flow's first datagram; false refuses it (the caller answers and counts). */
    private readonly admit?: (owner: FlowOwner, pkt: IpPacket, dstPort: number) => boolean,
  ) {
    this.counters = ctx.counters;
  }

  get size(): number {
    return this.flows.size;
  }

  /** The next sweep while any flow is open (idle timeouts, queued bytes), or null. */
  nextWakeAt(): number | null {
    return this.flows.size > 0 ? Math.max(this.sweptAt + UDP_SWEEP_MS, this.now) : null;
  }

  private toClient(packet: Buffer): void {
    this.ctx.out.packets.push(packet);
  }

  private report(incident: StackIncident): void {
    this.ctx.out.events.push({ type: 'incident', incident });
  }

  onPacket(pkt: IpPacket, udp: UdpView, owner: FlowOwner, now: number): void {
    this.now = now;
    const key = flowKey(owner, pkt.src, udp.srcPort, pkt.dst, udp.dstPort);
    let flow = this.flows.get(key);
    if (flow === undefined) {
      // RFC 768 reserves port 0: no socket can send to it.
      if (udp.dstPort === 0) return this.refuse(pkt, udp, owner, 'udp_port_zero', 'info');
      if (this.admit !== undefined && !this.admit(owner, pkt, udp.dstPort)) return;
      const count = this.perUser.get(owner.user) ?? 0;
      if (count >= this.opts.maxFlowsPerUser) {
        this.counters.inc('udp_flow_limit');
        return;
      }
      if (!this.ctx.fds.hasRoom()) return this.refuse(pkt, udp, owner, 'fd_limit', 'warn');
      if (this.opts.budgets?.refusesNewFlow(owner, 'udp', pkt.dst, udp.dstPort, now)) return;
      const opened = this.open(key, pkt, udp, owner, now);
      if (opened === null) return;
      flow = opened;
    }
    flow.lastActive = now;
    if (flow.held > 0 && (flow.held >= MAX_QUEUED_PER_FLOW || (flow.account !== null && flow.account.room <= 0))) {
      // The socket already holds a backlog the kernel has not taken: queueing more only grows memory.
      this.counters.inc('udp_dropped_queue_full');
      return;
    }
    flow.bytesOut += udp.payload.length;
    try {
      flow.socket?.send(udp.payload);
    } catch (err) {
      return this.fail(flow, err);
    }
    this.counters.inc('udp_out');
    this.account(flow);
  }

  /** Brings the user's account up to date with the bytes waiting in the flow's socket. */
  private account(flow: UdpFlow): void {
    if (flow.account === null) return;
    const held = flow.socket?.queuedBytes?.() ?? 0;
    if (held === flow.held) return;
    flow.account.add(held - flow.held);
    flow.held = held;
    if (held > 0) this.queued.add(flow);
    else this.queued.delete(flow);
  }

  /** No flow for this datagram: counted, reported, and the client told at once (port unreachable). */
  private refuse(pkt: IpPacket, udp: UdpView, owner: FlowOwner, reason: string, severity: 'info' | 'warn'): void {
    this.counters.inc(reason);
    const dst = IpAddress.fromBytes(pkt.dst);
    const client = IpAddress.fromBytes(pkt.src);
    this.report({ reason, severity, owner, flow: describeFlow(client, udp.srcPort, dst, udp.dstPort, 'udp') });
    if (mayReportUnreachable(dst)) this.toClient(buildIcmpUnreachable(dst, client, 'port', pkt.view.buf));
  }

  private open(key: string, pkt: IpPacket, udp: UdpView, owner: FlowOwner, now: number): UdpFlow | null {
    const flow: UdpFlow = {
      key,
      owner,
      client: IpAddress.fromBytes(pkt.src),
      clientPort: udp.srcPort,
      remote: IpAddress.fromBytes(pkt.dst),
      remotePort: udp.dstPort,
      socket: null,
      lastActive: now,
      bytesOut: 0,
      bytesIn: 0,
      // Memory of its own: a slice of Node's shared pool would keep 8 KB alive while the flow waits.
      quote: ownCopy(pkt.view.buf.subarray(0, QUOTE_MAX)),
      account: this.opts.budgets?.take(owner.user) ?? null,
      held: 0,
    };
    // Registered before the socket exists, so a failure reported at once finds the flow to close.
    this.flows.set(key, flow);
    this.perUser.set(owner.user, (this.perUser.get(owner.user) ?? 0) + 1);
    this.counters.inc('udp_flows_opened');
    try {
      const socket = this.egress(pkt.family, flow.remote.toString(), udp.dstPort, {
        onMessage: (payload) => {
          try {
            this.fromRemote(flow, payload);
          } catch (err) {
            this.fail(flow, err);
          }
        },
        onError: (code) => {
          try {
            this.remoteError(flow, code);
          } catch (err) {
            this.fail(flow, err);
          }
        },
        onFailed: (code) => {
          try {
            this.socketFailed(flow, code);
          } catch (err) {
            this.fail(flow, err);
          }
        },
      });
      flow.socket = socket;
      // Failed before the factory returned: the flow is gone, its socket must go too.
      if (this.flows.get(key) !== flow) socket.close();
    } catch (err) {
      this.fail(flow, err);
    }
    return this.flows.get(key) === flow ? flow : null;
  }

  private fromRemote(flow: UdpFlow, payload: Buffer): void {
    flow.quote = null;
    flow.lastActive = this.now;
    flow.bytesIn += payload.length;
    this.counters.inc('udp_in');
    this.toClient(buildUdpPacket(flow.remote, flow.remotePort, flow.client, flow.clientPort, payload));
    this.ctx.settled();
  }

  /** An ICMP error from the remote, on a socket that stays usable. */
  private remoteError(flow: UdpFlow, code: string): void {
    this.counters.inc(`udp_egress_${code.toLowerCase()}`);
    // Port unreachable upstream: tell the client at once instead of letting it time out.
    if (code === 'ECONNREFUSED') this.unreachable(flow, 'port');
    this.ctx.settled();
  }

  /** The flow's socket cannot be used (no route, broadcast refused...): the flow ends, the client is told. */
  private socketFailed(flow: UdpFlow, code: string): void {
    const reason = `udp_connect_${code.toLowerCase()}`;
    this.counters.inc(reason);
    this.report({ reason, severity: 'info', owner: flow.owner, flow: this.describe(flow) });
    const icmp = UNREACHABLE_FOR[code];
    if (icmp !== undefined) this.unreachable(flow, icmp);
    this.close(flow);
    this.ctx.settled();
  }

  private unreachable(flow: UdpFlow, why: UnreachableReason): void {
    if (flow.quote === null || !mayReportUnreachable(flow.remote)) return;
    this.toClient(buildIcmpUnreachable(flow.remote, flow.client, why, flow.quote));
  }

  /** A bug surfaced in one flow: that flow ends, counted and reported; nothing else is touched. */
  private fail(flow: UdpFlow, err: unknown): void {
    this.counters.inc('udp_flow_error');
    this.report({ reason: 'udp_flow_error', severity: 'error', owner: flow.owner, flow: this.describe(flow), error: err });
    this.close(flow);
    try {
      this.ctx.settled();
    } catch {
      // The edge could not take the output (what failed here, perhaps): the flow is closed all the same.
    }
  }

  private describe(flow: UdpFlow): string {
    return describeFlow(flow.client, flow.clientPort, flow.remote, flow.remotePort, 'udp');
  }

  /** Closes idle flows. */
  tick(now: number): void {
    this.now = now;
    this.sweptAt = now;
    for (const flow of [...this.queued]) this.account(flow);
    this.opts.budgets?.runWakes(now);
    for (const flow of this.flows.values()) {
      if (now - flow.lastActive >= this.opts.idleTimeoutMs) this.close(flow);
    }
  }

  /** Idempotent; never throws. */
  private close(flow: UdpFlow): void {
    if (this.flows.get(flow.key) !== flow) return;
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
    try {
      flow.socket?.close();
    } catch (err) {
      this.counters.inc('udp_close_error');
      this.report({ reason: 'udp_close_error', severity: 'error', owner: flow.owner, flow: this.describe(flow), error: err });
    }
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
