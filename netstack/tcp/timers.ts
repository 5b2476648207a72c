// Timers of one flow other than RTO/persist (which live in the Sender):
// delayed ACK, TIME-WAIT (2*MSL, RFC 9293 §3.4.2), idle timeout and keepalive
// (RFC 9293 §3.8.4), plus the event/stat types the endpoint reports.
import { DEFAULT_MSL_MS } from './config';

export type TcpState = 'PENDING' | 'SYN-RECEIVED' | 'ESTABLISHED' | 'FIN-WAIT-1' | 'FIN-WAIT-2' | 'CLOSING'
  | 'TIME-WAIT' | 'CLOSE-WAIT' | 'LAST-ACK' | 'CLOSED';

export type closeReason = 'fin' | 'rst_received' | 'rst_sent' | 'timeout' | 'refused' | 'aborted';

export type TcpEvent =
  | { type: 'established' }
  | { type: 'readable' }
  | { type: 'writable' }
  | { type: 'peer_fin' }
  | { type: 'closed'; reason: closeReason };

export interface TcpStats {
  /** in-order payload bytes received from the client */
  bytesIn: number;
  /** payload bytes sent to the client for the first time */
  bytesOut: number;
  /** segments sent again (RTO, fast/SACK recovery, loss probes, SYN-ACK) */
  retransmits: number;
  segmentsIn: number;
  segmentsOut: number;
  fastRecoveries: number;
  rtoExpirations: number;
  /** tail loss probes sent (RFC 8985 §7) */
  lossProbes: number;
  challengeAcks: number;
}

export function newStats(): TcpStats {
  return { bytesIn: 0, bytesOut: 0, retransmits: 0, segmentsIn: 0, segmentsOut: 0, fastRecoveries: 0,
    rtoExpirations: 0, lossProbes: 0, challengeAcks: 0 };
}

/** RFC 1122 §4.2.3.6 / Linux tcp_keepalive_probes */
export const KEEPALIVE_PROBES = 9;
const DEFAULT_KEEPALIVE_INTERVAL_MS = 75_000;

export type TimerKind = 'none' | 'rtx' | 'persist' | 'delack' | 'time_wait' | 'idle' | 'keepalive' | 'keepalive_dead';

interface SenderDeadlines {
  readonly rtxDeadline: number | null;
  readonly persistDeadline: number | null;
  readonly flightSize: number;
}

interface TimerOptions {
  msl?: number;
  idleTimeoutMs?: number;
  keepaliveMs?: number;
  keepaliveIntervalMs?: number;
}

export class TimerSet {
  private delack: number | null = null;
  private timeWait: number | null = null;
  private lastRecv: number;
  private lastActivity: number;
  private probes = 0;
  private readonly msl: number;
  private readonly idleMs: number;
  private readonly keepaliveMs: number;
  private readonly keepaliveIntervalMs: number;
  private cleared = false;

  constructor(opts: TimerOptions, now: number) {
    this.msl = opts.msl ?? DEFAULT_MSL_MS;
    this.idleMs = opts.idleTimeoutMs ?? 0;
    this.keepaliveMs = opts.keepaliveMs ?? 0;
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? Math.min(this.keepaliveMs, DEFAULT_KEEPALIVE_INTERVAL_MS);
    this.lastRecv = now;
    this.lastActivity = now;
  }

  /** Application traffic (write) keeps an idle flow alive. */
  activity(now: number): void {
    this.lastActivity = now;
  }

  /** An acceptable segment arrived from the client. */
  received(now: number): void {
    this.lastRecv = now;
    this.lastActivity = now;
    this.probes = 0;
  }

  delackAt(t: number | null): void {
    if (t === null || this.delack === null) this.delack = t;
  }

  startTimeWait(now: number): void {
    this.delack = null;
    this.timeWait = now + 2 * this.msl;
  }

  restartTimeWait(now: number): void {
    if (this.timeWait !== null) this.timeWait = now + 2 * this.msl;
  }

  clear(): void {
    this.cleared = true;
    this.delack = null;
    this.timeWait = null;
  }

  next(snd: SenderDeadlines, state: string): number | null {
    if (this.cleared) return null;
    if (this.timeWait !== null) return this.timeWait;
    let t = minOf(minOf(snd.rtxDeadline, snd.persistDeadline), this.delack);
    if (state === 'PENDING') return t;
    t = minOf(t, this.idleDeadline());
    if (this.keepaliveApplies(snd, state)) t = minOf(t, this.keepaliveDeadline());
    return t;
  }

  /** The first expired timer, consuming its deadline where the endpoint does not. */
  due(now: number, snd: SenderDeadlines, state: string): TimerKind {
    if (this.cleared) return 'none';
    if (this.timeWait !== null) return this.timeWait <= now ? 'time_wait' : 'none';
    if (snd.rtxDeadline !== null && snd.rtxDeadline <= now) return 'rtx';
    if (snd.persistDeadline !== null && snd.persistDeadline <= now) return 'persist';
    if (this.delack !== null && this.delack <= now) {
      this.delack = null;
      return 'delack';
    }
    if (state === 'PENDING') return 'none';
    const idle = this.idleDeadline();
    if (idle !== null && idle <= now) return 'idle';
    if (this.keepaliveApplies(snd, state) && this.keepaliveDeadline() <= now) {
      if (this.probes >= KEEPALIVE_PROBES) return 'keepalive_dead';
      this.probes++;
      return 'keepalive';
    }
    return 'none';
  }

  private idleDeadline(): number | null {
    return this.idleMs > 0 ? this.lastActivity + this.idleMs : null;
  }

  private keepaliveApplies(snd: SenderDeadlines, state: string): boolean {
    return this.keepaliveMs > 0 && snd.flightSize === 0 && snd.persistDeadline === null
      && (state === 'ESTABLISHED' || state === 'CLOSE-WAIT' || state === 'FIN-WAIT-2');
  }

  private keepaliveDeadline(): number {
    return this.lastRecv + this.keepaliveMs + this.probes * this.keepaliveIntervalMs;
  }
}

/** The earlier of two optional deadlines. */
export function minOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}
