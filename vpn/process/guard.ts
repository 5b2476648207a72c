// The process's last line of defence. Every callback fed by the network or a
// timer has its own error boundary (a failure ends one flow), so nothing is
// expected to arrive here. What arrives anyway is by construction not
// attributable to one flow, and neither is a fault in the WireGuard core
// (WireGuardCoreError, reported here by the concentrator): both mean state
// that can no longer be trusted. So the guard logs and counts it, gives the
// concentrator a bounded moment for its last words (status.json with the
// count, user logs flushed), and exits with EXIT_FATAL for a supervisor to
// restart the process. It never carries on silently.
import { Counters } from '../../netstack';
import type { Logger } from './log';

/** EX_SOFTWARE (sysexits.h): an internal software error. */
export const EXIT_FATAL = 70;
const LAST_WORDS_TIMEOUT_MS = 3000;

export interface ProcessGuardOptions {
  log: Logger;
  /** process.exit by default. */
  exit?: (code: number) => void;
  lastWordsTimeoutMs?: number;
}

export type FatalReason = 'uncaught_exception' | 'unhandled_rejection' | 'wireguard_core_error';

export class ProcessGuard {
  private readonly counterSet = new Counters<FatalReason>(['uncaught_exception', 'unhandled_rejection', 'wireguard_core_error']);
  private readonly lastWords: Array<() => void | Promise<void>> = [];
  private readonly exit: (code: number) => void;
  private exiting = false;

  constructor(private readonly opts: ProcessGuardOptions) {
    this.exit = opts.exit ?? ((code) => process.exit(code));
  }

  /** Shown in status.json and `sightline status` as `process.*`. */
  get counters(): Record<FatalReason, number> {
    return this.counterSet.values;
  }

  /** Work to do before a fatal exit, in order; all of it bounded by one timeout. */
  beforeExit(fn: () => void | Promise<void>): void {
    this.lastWords.push(fn);
  }

  /** Installs the process-level handlers; returns their removal. */
  install(proc: NodeJS.EventEmitter = process): () => void {
    const onException = (err: unknown): void => this.fatal('uncaught_exception', err);
    const onRejection = (reason: unknown): void => this.fatal('unhandled_rejection', reason);
    proc.on('uncaughtException', onException);
    proc.on('unhandledRejection', onRejection);
    return () => {
      proc.off('uncaughtException', onException);
      proc.off('unhandledRejection', onRejection);
    };
  }

  /** Logs, counts, and exits non-zero once the last words are said (or their time is up). Never throws. */
  fatal(reason: FatalReason, err: unknown): void {
    this.counterSet.inc(reason);
    try {
      this.opts.log.fatal({ reason, err: describe(err) }, `${reason}: ${describe(err).message}; exiting with status ${EXIT_FATAL} so that a supervisor restarts the concentrator`);
    } catch {
      process.stderr.write(`sightline: ${reason}: ${describe(err).message}\n`);
    }
    if (this.exiting) return;
    this.exiting = true;
    // Should anything below fail to call exit, the process still ends non-zero when its loop drains.
    process.exitCode = EXIT_FATAL;
    this.sayLastWords()
      .catch(() => undefined)
      .finally(() => this.exit(EXIT_FATAL));
  }

  private async sayLastWords(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.opts.lastWordsTimeoutMs ?? LAST_WORDS_TIMEOUT_MS)));
    const words = (async () => {
      for (const fn of this.lastWords) {
        try {
          await fn();
        } catch {
          // A broken last word must not keep the others or the exit from happening.
        }
      }
      await new Promise<void>((resolve) => {
        try {
          this.opts.log.flush(() => resolve());
        } catch {
          resolve();
        }
      });
    })();
    await Promise.race([words, timeout]);
    clearTimeout(timer);
  }
}

function describe(err: unknown): { message: string; stack?: string; name?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { message: String(err) };
}
