// What a terminated TCP flow is to the layers around the flow table: who
// and where (and the policy's decision), the handler that opens its
// upstream, the options of the table, and the record written when it ends.
import type { BufferBudgets } from './budget';
import type { TcpUpstream } from './egress/tcp_socket';
import type { FlowOwner } from './owner';
import type { TcpStats } from './tcp';
import type { IpAddress } from './wire';

export interface TcpFlowInfo {
  owner: FlowOwner;
  family: 4 | 6;
  client: IpAddress;
  clientPort: number;
  dst: IpAddress;
  dstPort: number;
  /** The destination is one of the concentrator's own addresses. */
  local: boolean;
  /** The policy verdict the flow's record carries (set by whoever chooses its handler; read when it ends). */
  decision?: { readonly rule: string; readonly action: string };
}

/** Opens the upstream for a new flow; rejects with TcpOpenError to refuse it. */
export type TcpFlowHandler = (flow: TcpFlowInfo) => Promise<TcpUpstream>;

/** Handed to the logging layer when a flow ends. */
export interface FlowRecord {
  type: 'flow';
  proto: 'tcp';
  user: string;
  peer: string;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  end: string;
  retransmits: number;
  rtoExpirations: number;
  /** The deciding policy rule and its action. */
  rule?: string;
  action?: string;
}

export interface TcpFlowOptions {
  mtu: number;
  maxFlowsPerUser: number;
  /** New connections per second per user (token bucket, burst = 2x). */
  maxSynPerSecond: number;
  idleTimeoutMs: number;
  recvBufferBytes?: number;
  sendBufferBytes?: number;
  msl?: number;
  /** Buffer budgets per user and overall (unbounded without). */
  budgets?: BufferBudgets;
}

/** The record of a flow that ended, `end` saying why (fin, timeout, reset, a tunnel cut...). */
export function flowRecord(info: TcpFlowInfo, stats: TcpStats, durationMs: number, end: string): FlowRecord {
  return {
    type: 'flow',
    proto: 'tcp',
    user: info.owner.user,
    peer: info.owner.id,
    src: info.client.toString(),
    srcPort: info.clientPort,
    dst: info.dst.toString(),
    dstPort: info.dstPort,
    bytesUp: stats.bytesIn,
    bytesDown: stats.bytesOut,
    durationMs: Math.round(durationMs),
    end,
    retransmits: stats.retransmits,
    rtoExpirations: stats.rtoExpirations,
    ...(info.decision && { rule: info.decision.rule, action: info.decision.action }),
  };
}
