// What the stack reports beyond its counters: a flow that failed or was
// refused for a reason an operator should read about. The stack reports
// every occurrence; the concentrator logs the first of each burst.
import type { FlowOwner } from './owner';

export interface StackIncident {
  /** Also the counter it was counted under. */
  reason: string;
  /** info: the network said no; warn: a limit refused a flow; error: a bug ended a flow. */
  severity: 'info' | 'warn' | 'error';
  owner?: FlowOwner;
  /** The flow, as "client:port -> destination:port/proto". */
  flow?: string;
  error?: unknown;
}

export function describeFlow(client: { toString(): string }, clientPort: number, dst: { toString(): string }, dstPort: number, proto: 'tcp' | 'udp'): string {
  return `${client.toString()}:${clientPort} -> ${dst.toString()}:${dstPort}/${proto}`;
}
