// Per-user limits on TCP flows (DESIGN.md: each user's flows are bounded):
// how many may be open at once, and new connections per second (a token
// bucket with a burst of twice the rate).

interface UserState {
  flows: number;
  tokens: number;
  refilledAt: number;
}

export class TcpFlowLimits {
  private readonly users = new Map<string, UserState>();

  constructor(
    private readonly maxFlowsPerUser: number,
    private readonly maxSynPerSecond: number,
  ) {}

  /** Why `user` may not open a flow now (the counter to count it under), or null when it may. */
  refusal(user: string, now: number): 'tcp_flow_limit' | 'tcp_syn_rate_limit' | null {
    const u = this.refill(user, now);
    if (u.flows >= this.maxFlowsPerUser) return 'tcp_flow_limit';
    if (u.tokens < 1) return 'tcp_syn_rate_limit';
    return null;
  }

  /** A flow of `user` opened (after refusal() said it may). */
  opened(user: string): void {
    const u = this.users.get(user);
    if (u === undefined) return;
    u.tokens -= 1;
    u.flows += 1;
  }

  closed(user: string): void {
    const u = this.users.get(user);
    if (u) u.flows = Math.max(0, u.flows - 1);
  }

  private refill(user: string, now: number): UserState {
    let u = this.users.get(user);
    const burst = this.maxSynPerSecond * 2;
    if (u === undefined) {
      u = { flows: 0, tokens: burst, refilledAt: now };
      this.users.set(user, u);
    } else {
      u.tokens = Math.min(burst, u.tokens + ((now - u.refilledAt) / 1000) * this.maxSynPerSecond);
      u.refilledAt = now;
    }
    return u;
  }
}
