// The process's file descriptors, shared by everything it does: the WireGuard
// socket, per-user logs, SQLite and one socket per egress flow. When egress
// takes the last ones, EMFILE breaks the rest (a log that cannot open, a
// database that cannot write). So new flows are refused while fewer than a
// reserve of descriptors is left under RLIMIT_NOFILE.
//
// Counting costs nothing per packet: egress sockets are counted as they open
// and close; everything else is the `baseline`, measured by listing
// /proc/self/fd when the concentrator recalibrates (every few seconds).
import { readdirSync, readFileSync } from 'node:fs';

/** What the flow tables ask before they open a socket for a new flow. */
export interface FdGate {
  hasRoom(): boolean;
}

export interface FdBudgetOptions {
  /** RLIMIT_NOFILE (soft); Infinity when unknown. */
  limit: number;
  /** Descriptors kept for the process itself; default max(64, 5% of the limit). */
  reserve?: number;
  /** Descriptors open now (all kinds); default: entries of /proc/self/fd. */
  countOpen?: () => number;
}

export interface FdSnapshot {
  limit: number;
  reserve: number;
  /** Estimated descriptors open now: baseline + egress sockets. */
  open: number;
  egress_sockets: number;
}

export function defaultReserve(limit: number): number {
  return Math.max(64, Math.ceil(limit * 0.05));
}

/** The soft "Max open files" of this process, from /proc/self/limits; Infinity when not on Linux or unlimited. */
export function readNofileLimit(limitsFile = '/proc/self/limits'): number {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync(limitsFile, 'utf8'));
    const n = m ? Number(m[1]) : NaN;
    return Number.isFinite(n) && n > 0 ? n : Infinity;
  } catch {
    return Infinity;
  }
}

function countProcFds(): number {
  try {
    // The listing itself holds one descriptor while it runs.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return 0;
  }
}

export class FdBudget implements FdGate {
  readonly limit: number;
  readonly reserve: number;
  private readonly countOpen: () => number;
  private egress = 0;
  private baseline: number;

  constructor(opts: FdBudgetOptions) {
    this.limit = opts.limit;
    this.reserve = opts.reserve ?? (Number.isFinite(opts.limit) ? defaultReserve(opts.limit) : 0);
    this.countOpen = opts.countOpen ?? countProcFds;
    this.baseline = Number.isFinite(this.limit) ? this.countOpen() : 0;
  }

  static forProcess(): FdBudget {
    return new FdBudget({ limit: readNofileLimit() });
  }

  /** An egress socket was created. */
  opened(): void {
    this.egress++;
  }

  /** An egress socket was closed. */
  closed(): void {
    if (this.egress > 0) this.egress--;
  }

  get open(): number {
    return this.baseline + this.egress;
  }

  hasRoom(): boolean {
    return this.open < this.limit - this.reserve;
  }

  /** Re-measures the descriptors that are not egress sockets (logs, SQLite, DNS, TLS fetches). */
  recalibrate(): void {
    if (!Number.isFinite(this.limit)) return;
    this.baseline = Math.max(0, this.countOpen() - this.egress);
  }

  snapshot(): FdSnapshot {
    return { limit: Number.isFinite(this.limit) ? this.limit : 0, reserve: this.reserve, open: this.open, egress_sockets: this.egress };
  }
}

/** The one budget of this process: egress sockets report to it, the flow tables consult it. */
export const processFds: FdBudget = FdBudget.forProcess();
