// What the stack produces (sans-IO, like the WireGuard device's output):
// packets to tunnel clients, what it reports, and when it wants tick().
import type { BudgetRefusalRecord } from './budget';
import type { EgressVerdict } from './egress/guard';
import type { StackIncident } from './incident';
import type { FlowOwner } from './owner';
import type { FlowRecord } from './tcp_flow_info';

/** A packet the egress guard refused, for counting and the user's log. */
export interface EgressDenial {
  owner: FlowOwner;
  /** IP protocol number (6 TCP, 17 UDP, ...). */
  protocol: number;
  family: 4 | 6;
  /** Destination address bytes: a view into the refused packet (read it before the packet's buffer is reused). */
  dst: Buffer;
  /** Destination port; -1 for protocols without ports. */
  dstPort: number;
  verdict: EgressVerdict;
}

export type StackEvent =
  /** A TCP flow ended (its record for the per-user log). */
  | { type: 'flow_end'; record: FlowRecord }
  /** The guard refused a packet (already counted and answered). */
  | { type: 'egress_denied'; denial: EgressDenial }
  /** A flow failed or was refused for a reason worth a log line (the edge rate-limits). */
  | { type: 'incident'; incident: StackIncident }
  /** A new flow refused for lack of buffer room (rate-limited per user), for the user's log. */
  | { type: 'budget_refusal'; record: BudgetRefusalRecord };

/**
 * The stack's pending output. Every call appends to it and returns it, and
 * so does work that completes between calls (an upstream's data, a connect,
 * a DNS answer; the stack then calls onOutput). The edge sends and handles
 * what is there, then clear()s it; the arrays are kept, so the packet path
 * allocates no container.
 */
export class StackOutput {
  /** IP packets to tunnel clients, in order. */
  readonly packets: Buffer[] = [];
  readonly events: StackEvent[] = [];
  /** When tick() is next due (null: nothing pending); set when a call returns. */
  wakeAt: number | null = null;

  clear(): void {
    // pop() stays inline where `length = 0` is a runtime call: this runs for every packet.
    const { packets, events } = this;
    while (packets.length > 0) packets.pop();
    while (events.length > 0) events.pop();
  }
}
