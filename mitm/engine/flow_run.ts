// One inspected flow's bookkeeping: what is known about it so far, its
// records, and its single ending (one `flow_end` record per flow). Sans-IO:
// records and the policy hook's notice leave as commands.

import type { Counters } from '../../netstack';
import type { UndecryptedReason } from '../flow_policy';
import type { Command } from './events';
import type { InspectedFlow } from './types';

export type FlowMode = 'inspect' | 'bypass' | 'non_tls' | 'refused';

export class FlowRun {
  host: string;
  sni: string | null = null;
  alpn: string | null = null;
  mode: FlowMode = 'refused';
  /** Why the flow was not decrypted (null: it was, or it was refused by policy, which its hook recorded). */
  undecrypted: UndecryptedReason | null = null;
  private ended = false;

  constructor(readonly flow: InspectedFlow, private readonly counters: Counters, private readonly emit: (c: Command) => void) {
    this.host = flow.dstAddress;
  }


  /** A record carrying the deciding rule and action as they are now (the hook sets them when it decides). */
  record(recordType: string, fields: Record<string, unknown> = {}): void {
    const { rule, action } = this.flow;
    this.emit({ type: 'record', recordType, fields: rule === undefined ? fields : { ...fields, rule, action } });
  }

  /** Writes the flow's `flow_end` record once, and tells its policy hook when it was not decrypted. */
  finish(result: string, now: number, extra: Record<string, unknown> = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.counters.inc(`end.${this.mode}.${result}`);
    const undecrypted = this.undecrypted === null ? {} : { undecrypted: this.undecrypted };
    this.record('flow_end', {
      mode: this.mode, result, host: this.host, sni: this.sni, alpn: this.alpn,
      dst: `${this.flow.dstAddress}:${this.flow.dstPort}`, client: `${this.flow.clientAddress}:${this.flow.clientPort}`,
      durationMs: now - this.flow.startedAt, ...undecrypted, ...extra,
    });
    if (this.undecrypted !== null) this.emit({ type: 'undecrypted', reason: this.undecrypted, sni: this.sni });
  }

  /** Closes both sides at once and records why. */
  abort(result: string, now: number, extra: Record<string, unknown> = {}): void {
    this.emit({ type: 'destroy', stream: 'client' });
    this.emit({ type: 'destroy', stream: 'server' });
    this.finish(result, now, extra);
  }
}
