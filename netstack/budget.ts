// Buffer budgets: what each user's flows hold (TCP receive, out-of-order and
// send queues, the flow streams' buffers, UDP and DNS data waiting to leave)
// is accounted per user and for the whole concentrator. Over budget, nothing
// new is buffered: new flows are refused, out-of-order data is dropped (the
// client retransmits), receive windows stop opening, and writes from the
// upstream wait (so the upstream socket stops being read: backpressure).
// Flows that wait are woken when their user has room again. One user at the
// limit holds only its own share, so it never stops another.
import type { Counters } from './counters';
import type { FlowOwner } from './owner';
import { IpAddress } from './wire';

export interface BufferLimits {
  /** Bytes one user's flows may hold. */
  perUser: number;
  /** Bytes all flows together may hold. */
  total: number;
}

/** Resume waiting flows only once this much room is back: no wake for every freed byte. */
const RESUME_BYTES = 64 * 1024;
/** A user's refusals are logged at most this often (the count in between rides on the next record). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** Wake passes per runWakes(): a woken flow may free bytes that wake others, but never in a loop. */
const MAX_WAKE_PASSES = 4;

export type BudgetLimit = 'user' | 'concentrator';

/** Logged in the user's log when a new flow is refused for lack of buffer room. */
export interface BudgetRefusalRecord {
  type: 'flow_refused';
  user: string;
  peer: string;
  reason: 'user_buffer_budget' | 'concentrator_buffer_budget';
  proto: 'tcp' | 'udp';
  dst: string;
  dstPort: number;
  bufferedBytes: number;
  limitBytes: number;
  /** Refusals of this user not logged one by one since the previous record. */
  refusedSinceLast: number;
}

/** Something blocked for lack of room (a flow's writes, its receive window). */
export interface BudgetWaiter {
  readonly account: BufferAccount;
  wake(now: number): void;
}

export class BufferAccount {
  used = 0;
  /** Holders (flows) that may still add to `used`. */
  refs = 0;
  private lastLoggedAt = -Infinity;
  private unlogged = 0;

  constructor(
    readonly user: string,
    private readonly budgets: BufferBudgets,
  ) {}

  /** Adds held bytes (a negative delta gives them back). */
  add(delta: number): void {
    if (delta === 0) return;
    this.used += delta;
    this.budgets.changed(this, delta);
  }

  /** Bytes that may still be held before this user's or the concentrator's limit (≤ 0: over budget). */
  get room(): number {
    const l = this.budgets.limits;
    return Math.min(l.perUser - this.used, l.total - this.budgets.used);
  }

  /** Which limit is reached, or null while there is room. */
  get exhausted(): BudgetLimit | null {
    if (this.used >= this.budgets.limits.perUser) return 'user';
    if (this.budgets.used >= this.budgets.limits.total) return 'concentrator';
    return null;
  }

  /** A refusal: the record to log now, or null when one was logged recently (it is counted for the next). */
  refusal(owner: FlowOwner, proto: 'tcp' | 'udp', dst: string, dstPort: number, limit: BudgetLimit, now: number): BudgetRefusalRecord | null {
    if (now - this.lastLoggedAt < REFUSAL_LOG_INTERVAL_MS) {
      this.unlogged++;
      return null;
    }
    const refusedSinceLast = this.unlogged;
    this.lastLoggedAt = now;
    this.unlogged = 0;
    const l = this.budgets.limits;
    return {
      type: 'flow_refused', user: owner.user, peer: owner.id,
      reason: limit === 'user' ? 'user_buffer_budget' : 'concentrator_buffer_budget',
      proto, dst, dstPort,
      bufferedBytes: limit === 'user' ? this.used : this.budgets.used,
      limitBytes: limit === 'user' ? l.perUser : l.total,
      refusedSinceLast,
    };
  }
}

export class BufferBudgets {
  private total = 0;
  private readonly accounts = new Map<string, BufferAccount>();
  /**
   * Waiters by account. Wakes look only at accounts that may have room again
   * (`due`), so a user with thousands of flows waiting, still over budget,
   * costs one check per wake rather than one per flow, on every other user's
   * ACK.
   */
  private readonly waiting = new Map<BufferAccount, Set<BudgetWaiter>>();
  /** Accounts with waiters that gave bytes back since the last wake. */
  private readonly due = new Set<BufferAccount>();
  /** The concentrator's room was short and bytes came back: every account with waiters may have room. */
  private allDue = false;
  private waking = false;

  constructor(
    readonly limits: BufferLimits,
    private readonly counters?: Counters,
    /** Refusals for the user's log (rate-limited per user). */
    private readonly report?: (r: BudgetRefusalRecord) => void,
  ) {}

  /**
   * Whether a new flow must be refused because its user or the concentrator
   * is over budget; a refusal is counted and reported. `dst` is the raw
   * destination address (formatted only when refused).
   */
  refusesNewFlow(owner: FlowOwner, proto: 'tcp' | 'udp', dst: Buffer, dstPort: number, now: number): boolean {
    const account = this.peek(owner.user);
    const limit = account.exhausted;
    if (limit === null) return false;
    this.counters?.inc(`${proto}_flow_refused_${limit}_budget`);
    const record = account.refusal(owner, proto, IpAddress.fromBytes(dst).toString(), dstPort, limit, now);
    if (record !== null) this.report?.(record);
    return true;
  }

  /** Bytes held by all flows. */
  get used(): number {
    return this.total;
  }

  /** Bytes held per user (users holding nothing are left out). */
  usage(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [user, a] of this.accounts) if (a.used > 0) out[user] = a.used;
    return out;
  }

  /** The user's account, taken by one more holder (give it back with release()). */
  take(user: string): BufferAccount {
    let a = this.accounts.get(user);
    if (a === undefined) {
      a = new BufferAccount(user, this);
      this.accounts.set(user, a);
    }
    a.refs++;
    return a;
  }

  /** A holder is done; it must have given back its bytes first. */
  release(a: BufferAccount): void {
    a.refs--;
    if (a.refs <= 0 && a.used === 0 && this.accounts.get(a.user) === a) this.accounts.delete(a.user);
  }

  /** The user's account without taking it (for checks before a flow exists). */
  peek(user: string): BufferAccount {
    return this.accounts.get(user) ?? new BufferAccount(user, this);
  }

  /** Internal: every account's change goes through here. */
  changed(account: BufferAccount, delta: number): void {
    if (delta < 0 && this.waiting.size > 0) {
      if (this.waiting.has(account)) this.due.add(account);
      if (this.limits.total - this.total < this.resumeAt) this.allDue = true;
    }
    this.total += delta;
  }

  /** Room a waiting account needs before its flows resume: no wake for every freed byte. */
  private get resumeAt(): number {
    return Math.min(RESUME_BYTES, this.limits.perUser / 4);
  }

  /**
   * Holds `bytes` for `user` outside any flow (a DNS query in flight) if the
   * user and the concentrator have room; give them back with unreserve().
   */
  reserve(user: string, bytes: number): boolean {
    if (this.peek(user).room < bytes) return false;
    this.take(user).add(bytes);
    return true;
  }

  unreserve(user: string, bytes: number): void {
    const a = this.accounts.get(user);
    if (a === undefined) return;
    a.add(-bytes);
    this.release(a);
  }

  /** `w` is woken (once) when its account has room again. */
  wait(w: BudgetWaiter): void {
    let set = this.waiting.get(w.account);
    if (set === undefined) {
      set = new Set();
      this.waiting.set(w.account, set);
    }
    set.add(w);
  }

  forget(w: BudgetWaiter): void {
    const set = this.waiting.get(w.account);
    if (set === undefined) return;
    set.delete(w);
    if (set.size === 0) this.waiting.delete(w.account);
  }

  /**
   * Wakes waiters whose user has room again; call after work that may have
   * freed bytes. Re-entrant calls (a woken flow flushing) return at once and
   * leave the work to the outer call.
   */
  runWakes(now: number): void {
    if (this.waking) return;
    this.waking = true;
    try {
      for (let pass = 0; pass < MAX_WAKE_PASSES && (this.allDue || this.due.size > 0); pass++) {
        const accounts = this.allDue ? [...this.waiting.keys()] : [...this.due];
        this.allDue = false;
        this.due.clear();
        for (const a of accounts) this.wakeIn(a, now);
      }
    } finally {
      this.waking = false;
    }
  }

  /** Wakes the account's waiters one by one while it has room (each may take some as it resumes). */
  private wakeIn(a: BufferAccount, now: number): void {
    const set = this.waiting.get(a);
    if (set === undefined || a.room < this.resumeAt) return;
    for (const w of [...set]) {
      if (a.room < this.resumeAt) return;
      this.forget(w);
      w.wake(now);
    }
  }
}
