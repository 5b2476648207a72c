// One TCP flow's share of its user's buffer account (budget.ts): the bytes it
// holds now (endpoint queues and stream buffers) are kept in the account, and
// a flow out of room waits to be woken when some is given back.
import type { BudgetWaiter, BufferAccount, BufferBudgets } from './budget';

export class FlowBufferShare {
  /** What this flow has put in the account. */
  private held = 0;
  /** Made on the first wait for room (most flows never wait). */
  private waiter: BudgetWaiter | null = null;

  constructor(
    private readonly budgets: BufferBudgets,
    private readonly account: BufferAccount,
    /** The user has room again: resume the flow. */
    private readonly onRoom: (now: number) => void,
  ) {}

  /** Brings the account up to date with what the flow holds now. */
  update(held: number): void {
    if (held === this.held) return;
    this.account.add(held - this.held);
    this.held = held;
  }

  /** Bytes that may still be held before the user's or the concentrator's limit (≤ 0: over budget). */
  get room(): number {
    return this.account.room;
  }

  /** Out of room: onRoom is called once some is given back. */
  wait(): void {
    this.waiter ??= { account: this.account, wake: this.onRoom };
    this.budgets.wait(this.waiter);
  }

  /** The flow ended: everything it held leaves the account. */
  release(): void {
    this.account.add(-this.held);
    this.held = 0;
    if (this.waiter !== null) this.budgets.forget(this.waiter);
    this.budgets.release(this.account);
  }
}
