// One inspected flow's bookkeeping: what is known about it so far, its
// records, and its single ending (one `flow_end` record per flow).

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { InspectedFlow } from './types';
import type { UndecryptedReason } from '../flow_policy';

export type FlowMode = 'inspect' | 'bypass' | 'non_tls' | 'refused';

/** What a flow needs from its engine. */
export interface FlowBookkeeper {
  now(): number;
  count(key: string): void;
  record(flow: InspectedFlow, type: string, fields: Record<string, unknown>): void;
}

/** One flow's bookkeeping: its records and its single ending. */
export class FlowRun {
  host: string;
  sni: string | null = null;
  alpn: string | null = null;
  mode: FlowMode = 'refused';
  /** Why the flow was not decrypted (null: it was, or it was refused by policy, which its hook recorded). */
  undecrypted: UndecryptedReason | null = null;
  private ended = false;

  constructor(readonly flow: InspectedFlow, readonly client: Duplex, readonly upstream: Socket, private readonly engine: FlowBookkeeper) {
    this.host = flow.dstAddress;
  }

  record(type: string, fields: Record<string, unknown> = {}): void {
    this.engine.record(this.flow, type, fields);
  }

  /** Writes the flow's `flow_end` record once, and tells its policy hook when it was not decrypted. */
  finish(result: string, extra: Record<string, unknown> = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.engine.count(`end.${this.mode}.${result}`);
    const undecrypted = this.undecrypted === null ? {} : { undecrypted: this.undecrypted };
    this.record('flow_end', {
      mode: this.mode, result, host: this.host, sni: this.sni, alpn: this.alpn,
      dst: `${this.flow.dstAddress}:${this.flow.dstPort}`, client: `${this.flow.clientAddress}:${this.flow.clientPort}`,
      durationMs: this.engine.now() - this.flow.startedAt, ...undecrypted, ...extra,
    });
    if (this.undecrypted === null) return;
    try {
      this.flow.policy?.undecrypted?.(this.undecrypted, this.sni);
    } catch {
      this.engine.count('policy_hook_errors');
    }
  }

  /** Closes both sides at once and records why. */
  abort(result: string, extra: Record<string, unknown> = {}): void {
    this.client.destroy();
    this.upstream.destroy();
    this.finish(result, extra);
  }
}
