// TCP flows from tunnel clients: one userspace endpoint per (owner, 5-tuple),
// terminated here and handed, as a Duplex, to a handler that opened the
// upstream first (socket egress by default, TLS inspection for some ports).
// Per-user limits bound what one employee can make the concentrator hold.
// Each flow is an error boundary: a bug surfacing in one (in its segments,
// its timers, its upstream's accept or refusal, its stream) resets that flow
// and is counted as tcp_flow_error; the table and every other flow go on.
//
// The table is passed `now`; only its flows' I/O adapters (the upstream's
// connect, the stream) read the edge clock, when I/O completes outside any
// call into the stack. What it produces goes to the stack's output.
import { DEFAULT_MSL_MS, SendChunkPool, TcpEndpoint, mssForMtu, rstForUnknownSegment, type TcpEvent } from './tcp';
import { buildIcmpUnreachable, buildTcpPacket, IpAddress, mayReportUnreachable, PacketArena, SYN, ACK, RST, type IpPacket, type TcpRepr } from './wire';
import { TcpEndpointStream } from './tcp_stream';
import { TcpOpenError, type TcpUpstream } from './egress/tcp_socket';
import type { FdGate } from './egress/fd_budget';
import type { Clock } from './clock';
import type { Counters } from './counters';
import { describeFlow, type StackIncident } from './incident';
import type { StackOutput } from './output';
import { flowKey, type FlowOwner } from './owner';
import { WakeQueue } from './wake_queue';
import { ClosedFlows } from './tcp_closed_flows';
import { TcpFlowLimits } from './tcp_flow_limits';
import { flowRecord, type TcpFlowHandler, type TcpFlowInfo, type TcpFlowOptions } from './tcp_flow_info';
import { openUpstream } from './tcp_upstream';
import { FlowBufferShare } from './tcp_flow_share';

export type { FlowRecord, TcpFlowHandler, TcpFlowInfo, TcpFlowOptions } from './tcp_flow_info';

/**
 * How long the 4-tuple of a flow that closed cleanly keeps absorbing late
 * segments (at most 2*MSL). When thousands of flows close at once the client
 * retransmits FINs and ACKs that were queued behind the burst; they belong to
 * a connection both sides already finished, so an RST for each (RFC 9293
 * §3.10.7.1 for an unknown connection) is pure extra work on both ends.
 */
const CLOSED_FLOW_GRACE_MAX_MS = 10_000;

interface Flow {
  key: string;
  info: TcpFlowInfo;
  ep: TcpEndpoint;
  stream: TcpEndpointStream | null;
  startedAt: number;
  endReason: string | null;
  /** WakeQueue slot: the deadline it is queued for (Infinity when not queued). */
  wakeAt: number;
  wakeIndex: number;
  /** Its share of the user's buffer account (null without budgets). */
  share: FlowBufferShare | null;
  /** In the table's list of flows owing an ACK at the end of the receive batch. */
  ackQueued: boolean;
}

/** What the table needs from the stack around it. */
export interface TcpFlowContext {
  /** Who opens the upstream of a new flow (null refuses it). */
  handlerFor(info: TcpFlowInfo): TcpFlowHandler | null;
  out: StackOutput;
  counters: Counters;
  /** Consulted before a new flow opens its upstream socket. */
  fds: FdGate;
  /** Read by the flows' I/O adapters only (see above). */
  edgeClock: Clock;
  /** After work done outside a call into the stack: tells the edge that output is waiting. */
  settled(): void;
}

export class TcpFlowTable {
  private readonly flows = new Map<string, Flow>();
  private readonly limits: TcpFlowLimits;
  private readonly wakes = new WakeQueue<Flow>();
  private readonly closed: ClosedFlows;
  /** Memory of the segments the flows emit (see PacketArena). */
  private readonly arena = new PacketArena();
  /** Memory of the flows' send queues (see SendBuffer); segments spanning two chunks are copied into the arena. */
  private readonly sendChunks = new SendChunkPool(this.arena);
  /** Set by the stack's edge while a receive batch is being fed (see endBatch). */
  batching = false;
  /** Flows whose every-second-segment ACK waits for the end of the batch. */
  private owedAcks: Flow[] = [];

  constructor(
    private readonly opts: TcpFlowOptions,
    private readonly ctx: TcpFlowContext,
  ) {
    this.limits = new TcpFlowLimits(opts.maxFlowsPerUser, opts.maxSynPerSecond);
    this.closed = new ClosedFlows(Math.min(2 * (opts.msl ?? DEFAULT_MSL_MS), CLOSED_FLOW_GRACE_MAX_MS));
  }

  get size(): number {
    return this.flows.size;
  }

  /** The earliest endpoint timer (the grace of closed flows is let go at any tick: it only holds memory). */
  nextWakeAt(): number | null {
    return this.wakes.peekTime();
  }

  onPacket(pkt: IpPacket, seg: TcpRepr, owner: FlowOwner, local: boolean, now: number): void {
    const key = flowKey(owner, pkt.src, seg.srcPort, pkt.dst, seg.dstPort);
    const flow = this.flows.get(key);
    if (flow !== undefined && !(seg.flags & SYN && !(seg.flags & ACK) && flow.ep.acceptsNewSyn(seg))) {
      try {
        flow.ep.onSegment(seg, now, this.batching);
        this.flush(flow, now);
        if (flow.ep.ackOwed && !flow.ackQueued) {
          flow.ackQueued = true;
          this.owedAcks.push(flow);
        }
      } catch (err) {
        this.fail(flow, err, now);
      }
      return;
    }
    if (flow !== undefined) this.remove(flow, 'replaced_by_new_syn', now);
    const isSyn = (seg.flags & (SYN | ACK | RST)) === SYN;
    if (this.closed.absorbs(key, isSyn, now)) {
      this.ctx.counters.inc('tcp_late_segment');
      return;
    }
    if (!isSyn) {
      // RFC 9293 §3.10.7.1: a segment for no connection gets a reset.
      this.ctx.counters.inc('tcp_unknown_flow');
      const rst = rstForUnknownSegment(seg);
      if (rst) this.toClient(buildTcpPacket(IpAddress.fromBytes(pkt.dst), IpAddress.fromBytes(pkt.src), rst));
      return;
    }
    this.open(key, pkt, seg, owner, local, now);
  }

  private open(key: string, pkt: IpPacket, syn: TcpRepr, owner: FlowOwner, local: boolean, now: number): void {
    const limited = this.limits.refusal(owner.user, now);
    if (limited !== null) {
      this.ctx.counters.inc(limited);
      return;
    }
    if (this.opts.budgets?.refusesNewFlow(owner, 'tcp', pkt.dst, syn.dstPort, now)) {
      const rst = rstForUnknownSegment(syn);
      if (rst) this.toClient(buildTcpPacket(IpAddress.fromBytes(pkt.dst), IpAddress.fromBytes(pkt.src), rst));
      return;
    }
    const info: TcpFlowInfo = {
      owner,
      family: pkt.family,
      client: IpAddress.fromBytes(pkt.src),
      clientPort: syn.srcPort,
      dst: IpAddress.fromBytes(pkt.dst),
      dstPort: syn.dstPort,
      local,
    };
    if (!this.ctx.fds.hasRoom()) return this.reset(info, syn, 'fd_limit', 'warn');
    let handler: TcpFlowHandler | null;
    try {
      handler = this.ctx.handlerFor(info);
    } catch (err) {
      return this.reset(info, syn, 'tcp_flow_error', 'error', err);
    }
    if (handler === null) return this.reset(info, syn, 'tcp_no_handler', null);
    this.limits.opened(owner.user);
    const budgets = this.opts.budgets;
    let flow: Flow | null = null;
    const share = budgets ? new FlowBufferShare(budgets, budgets.take(owner.user), (at) => {
      if (flow !== null) this.roomAgain(flow, at);
    }) : null;
    const ep = TcpEndpoint.fromSyn(syn, now, {
      mss: mssForMtu(this.opts.mtu, pkt.family === 6),
      idleTimeoutMs: this.opts.idleTimeoutMs,
      recvBufferBytes: this.opts.recvBufferBytes,
      sendBufferBytes: this.opts.sendBufferBytes,
      sendChunks: this.sendChunks,
      msl: this.opts.msl,
      room: share ? () => (flow === null ? Infinity : this.roomFor(flow)) : undefined,
    });
    const opened: Flow = { key, info, ep, stream: null, startedAt: now, endReason: null, wakeAt: Infinity, wakeIndex: -1, share, ackQueued: false };
    flow = opened;
    this.flows.set(key, opened);
    this.ctx.counters.inc('tcp_flows_opened');
    // Keep the original SYN to quote in an ICMP error if the upstream is unreachable.
    const synPacket = Buffer.from(pkt.view.buf.subarray(0, 120));
    openUpstream(() => handler(info), this.ctx.edgeClock, {
      accepted: (upstream, at) => this.accepted(opened, upstream, at),
      refused: (err, at) => this.refused(opened, err, synPacket, at),
      failed: (err, at) => this.fail(opened, err, at),
    });
  }

  /** A SYN that gets no flow: counted, reported when `severity` says so, answered with a reset. */
  private reset(info: TcpFlowInfo, syn: TcpRepr, reason: string, severity: StackIncident['severity'] | null, error?: unknown): void {
    this.ctx.counters.inc(reason);
    if (severity !== null) this.report({ reason, severity, owner: info.owner, flow: this.describe(info), error });
    const rst = rstForUnknownSegment(syn);
    if (rst) this.toClient(buildTcpPacket(info.dst, info.client, rst));
  }

  private describe(info: TcpFlowInfo): string {
    return describeFlow(info.client, info.clientPort, info.dst, info.dstPort, 'tcp');
  }

  private toClient(packet: Buffer): void {
    this.ctx.out.packets.push(packet);
  }

  private report(incident: StackIncident): void {
    this.ctx.out.events.push({ type: 'incident', incident });
  }

  private accepted(flow: Flow, upstream: TcpUpstream, now: number): void {
    if (this.flows.get(flow.key) !== flow || flow.ep.state === 'CLOSED') {
      // The client gave up (RST) while we were connecting.
      upstream.abort();
      return;
    }
    try {
      flow.ep.accept(now);
      const stream = new TcpEndpointStream(flow.ep, this.ctx.edgeClock, {
        flush: (at) => this.flushGuarded(flow, at),
        fail: (err, at) => this.fail(flow, err, at),
        room: () => this.roomFor(flow),
        waitForRoom: () => this.waitForRoom(flow),
      });
      flow.stream = stream;
      stream.on('error', () => undefined);
      upstream.attach(stream);
      this.flush(flow, now);
    } catch (err) {
      upstream.abort();
      this.fail(flow, err, now);
      return;
    }
    this.ctx.settled();
  }

  private refused(flow: Flow, err: unknown, synPacket: Buffer, now: number): void {
    if (this.flows.get(flow.key) !== flow) return;
    const failure = err instanceof TcpOpenError ? err.failure : 'refused';
    const { counters } = this.ctx;
    counters.inc(`tcp_upstream_${failure}`);
    flow.endReason = `upstream_${failure}`;
    if (!(err instanceof TcpOpenError)) {
      // A handler is to reject with TcpOpenError: anything else is a bug, refused like a closed port.
      counters.inc('tcp_flow_error');
      this.report({ reason: 'tcp_flow_error', severity: 'error', owner: flow.info.owner, flow: this.describe(flow.info), error: err });
    } else if (failure === 'fd_limit') {
      // EMFILE despite the budget (descriptors taken elsewhere since the last calibration).
      counters.inc('fd_limit');
      this.report({ reason: 'fd_limit', severity: 'warn', owner: flow.info.owner, flow: this.describe(flow.info) });
    }
    const unreachable = failure === 'unreachable_host' || failure === 'unreachable_net';
    // RFC 1122 §3.2.2 and §4.2.3.10: a SYN sent to a multicast group gets neither an ICMP error nor a reset.
    const silent = failure !== 'blocked' && !mayReportUnreachable(flow.info.dst);
    if (unreachable || silent || failure === 'blocked') {
      const why = failure === 'blocked' ? 'admin_prohibited' : failure === 'unreachable_net' ? 'net' : 'host';
      if (!silent) this.toClient(buildIcmpUnreachable(flow.info.dst, flow.info.client, why, synPacket));
      flow.ep.abort(now);
      flow.ep.drainOutput();
      this.remove(flow, flow.endReason, now);
    } else {
      flow.ep.refuse(now);
      this.flush(flow, now);
    }
    this.ctx.settled();
  }

  /** flush() for the flow's stream (outside the table): a failure ends only this flow. */
  private flushGuarded(flow: Flow, now: number): void {
    try {
      this.flush(flow, now);
      this.ctx.settled();
    } catch (err) {
      this.fail(flow, err, now);
    }
  }

  /**
   * A bug surfaced in one flow: the client gets a reset, the upstream is torn
   * down with the stream, the failure is counted and reported. Idempotent.
   */
  private fail(flow: Flow, err: unknown, now: number): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.ctx.counters.inc('tcp_flow_error');
    this.report({ reason: 'tcp_flow_error', severity: 'error', owner: flow.info.owner, flow: this.describe(flow.info), error: err });
    // Out of the table first: whatever the teardown triggers finds the flow gone.
    this.remove(flow, 'internal_error', now);
    const { info } = flow;
    try {
      flow.ep.abort(now);
      for (const seg of flow.ep.drainOutput()) this.toClient(buildTcpPacket(info.dst, info.client, seg, this.arena));
    } catch {
      // The endpoint itself is what failed: the client's retransmissions will meet an unknown flow and get a reset.
    }
    try {
      flow.stream?.destroy();
    } catch {
      // Destroying a stream whose endpoint failed may fail again; the flow is gone either way.
    }
    try {
      this.ctx.settled();
    } catch {
      // The edge could not take the reset either: the flow is gone all the same.
    }
  }

  /** Sends what the endpoint produced, dispatches its events, reschedules its timer. */
  private flush(flow: Flow, now: number): void {
    const { info } = flow;
    for (const seg of flow.ep.drainOutput()) this.toClient(buildTcpPacket(info.dst, info.client, seg, this.arena));
    for (const e of flow.ep.drainEvents()) this.onEvent(flow, e, now);
    if (this.flows.get(flow.key) === flow) {
      const wake = flow.ep.nextWakeAt();
      if (wake === null) this.wakes.cancel(flow);
      else if (wake !== flow.wakeAt) this.wakes.schedule(flow, wake);
      // What the flow holds now: endpoint queues and stream buffers.
      const s = flow.stream;
      flow.share?.update(flow.ep.heldBytes + (s === null ? 0 : s.readableLength + s.writableLength));
    }
    this.opts.budgets?.runWakes(now);
  }

  private roomFor(flow: Flow): number {
    if (flow.share === null) return Infinity;
    const room = flow.share.room;
    if (room <= 0) this.waitForRoom(flow);
    return room;
  }

  private waitForRoom(flow: Flow): void {
    if (this.flows.get(flow.key) === flow) flow.share?.wait();
  }

  /** The user has buffer room again: resume writes from the upstream and reopen the window. */
  private roomAgain(flow: Flow, now: number): void {
    if (this.flows.get(flow.key) !== flow) return;
    flow.stream?.onWritable();
    flow.ep.windowUpdate(now);
    this.flush(flow, now);
  }

  private onEvent(flow: Flow, e: TcpEvent, now: number): void {
    const s = flow.stream;
    switch (e.type) {
      case 'readable':
        s?.onReadable();
        break;
      case 'writable':
        s?.onWritable();
        break;
      case 'peer_fin':
        s?.onPeerFin();
        break;
      case 'closed':
        flow.endReason ??= e.reason;
        s?.onClosed(e.reason);
        this.remove(flow, flow.endReason, now);
        break;
      default:
        break;
    }
  }

  /** The receive batch is over: each flow sends the one ACK it held for its segments in it. */
  endBatch(now: number): void {
    this.batching = false;
    const owed = this.owedAcks;
    if (owed.length === 0) return;
    this.owedAcks = [];
    for (const flow of owed) {
      flow.ackQueued = false;
      if (this.flows.get(flow.key) !== flow) continue;
      try {
        flow.ep.sendOwedAck(now);
        this.flush(flow, now);
      } catch (err) {
        this.fail(flow, err, now);
      }
    }
  }

  /** Every segment the flows emitted so far has been read and let go: their memory, and that of the send queues' seam copies, is reused (PacketArena.recycle). */
  recyclePackets(): void {
    this.arena.recycle();
  }

  /** Runs due endpoint timers. */
  tick(now: number): void {
    for (let flow = this.wakes.popDue(now); flow !== null; flow = this.wakes.popDue(now)) {
      try {
        flow.ep.onTimer(now);
        this.flush(flow, now);
      } catch (err) {
        this.fail(flow, err, now);
      }
    }
    this.closed.expire(now);
  }

  private remove(flow: Flow, reason: string, now: number): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    this.wakes.cancel(flow);
    // Only a close both sides completed (FIN/ACK both ways, or TIME-WAIT over) leaves a grace entry.
    if (reason === 'fin') this.closed.add(flow.key, now);
    this.limits.closed(flow.info.owner.user);
    this.ctx.counters.inc('tcp_flows_closed');
    this.giveBack(flow);
    this.ctx.out.events.push({ type: 'flow_end', record: flowRecord(flow.info, flow.ep.stats, now - flow.startedAt, reason) });
  }

  /** A flow ended: its bytes leave the user's account; what it refused is counted. */
  private giveBack(flow: Flow): void {
    const refused = flow.ep.refusedBytes;
    const { counters } = this.ctx;
    if (refused.budget > 0) counters.inc('tcp_rx_refused_budget_bytes', refused.budget);
    if (refused.oooCapacity > 0) counters.inc('tcp_ooo_refused_capacity_bytes', refused.oooCapacity);
    if (refused.oooPieces > 0) counters.inc('tcp_ooo_refused_pieces_bytes', refused.oooPieces);
    flow.share?.release();
  }

  /**
   * Ends every flow of one owner at once, without a word to the client (its
   * tunnel is being cut): upstreams are closed, records say `reason`.
   */
  closeOwner(ownerId: string, reason: string, now: number): number {
    let n = 0;
    for (const flow of [...this.flows.values()]) {
      if (flow.info.owner.id !== ownerId) continue;
      // Aborted first, so destroying the stream below sends nothing more.
      flow.ep.abort(now);
      flow.ep.drainOutput();
      this.remove(flow, reason, now);
      flow.stream?.destroy();
      n++;
    }
    return n;
  }

  closeAll(now: number): void {
    for (const flow of [...this.flows.values()]) {
      try {
        flow.stream?.destroy();
        flow.ep.abort(now);
        this.flush(flow, now);
        this.remove(flow, 'shutdown', now);
      } catch (err) {
        this.fail(flow, err, now);
      }
    }
  }
}
