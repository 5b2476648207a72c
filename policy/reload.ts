// Hot reload: a new config is compiled aside and swapped in only when it is
// whole. New flows then use it; a flow keeps the verdict it was given. On
// any error the running policy stays and the error (with file and line) is
// returned for the log.
import { compilePolicy, type CompileOptions } from './compile';
import type { Policy } from './match';
import type { PolicySource } from './schema';

export type ReloadResult = { ok: true; policy: Policy; generation: number } | { ok: false; error: string; generation: number };

export class PolicyHolder {
  private policy: Policy;
  private gen = 1;

  constructor(initial: Policy, private readonly opts: CompileOptions = {}) {
    this.policy = initial;
  }

  /** The policy new flows are decided by. */
  get current(): Policy {
    return this.policy;
  }

  /** Counts successful swaps (1 for the initial policy): a flow record can say which policy decided it. */
  get generation(): number {
    return this.gen;
  }

  /**
   * `load` reads and validates the config (vpn/config's loader: its errors
   * carry file:line); the policy is then compiled, which reads the category
   * files. Either failing leaves the current policy in place.
   */
  reload(load: () => PolicySource): ReloadResult {
    let next: Policy;
    try {
      next = compilePolicy(load(), this.opts);
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err), generation: this.gen };
    }
    this.policy = next;
    this.gen++;
    return { ok: true, policy: next, generation: this.gen };
  }
}
