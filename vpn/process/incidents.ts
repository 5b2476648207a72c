// Log lines for what the stack reports (netstack/incident.ts), one per burst:
// the first incident of a reason is logged with its user and flow; the rest
// of the burst is only counted (the stack's counters have every one) and
// summed up in one line when the burst goes quiet, or every minute while it
// lasts. One hostile client sending a thousand datagrams a second to an
// unroutable address costs a log line, not a thousand.
import type { StackIncident } from '../../netstack';
import type { Logger } from './log';

/** A reason not seen for this long starts a new burst. */
const QUIET_MS = 10_000;
const SUMMARY_EVERY_MS = 60_000;

interface Burst {
  severity: StackIncident['severity'];
  lastAt: number;
  summarizedAt: number;
  suppressed: number;
}

export class IncidentLog {
  private readonly bursts = new Map<string, Burst>();

  constructor(private readonly log: Logger) {}

  /** `now`: monotonic ms. Never throws. */
  report(incident: StackIncident, now: number): void {
    try {
      const burst = this.bursts.get(incident.reason);
      if (burst !== undefined) {
        burst.lastAt = now;
        burst.suppressed++;
        return;
      }
      this.bursts.set(incident.reason, { severity: incident.severity, lastAt: now, summarizedAt: now, suppressed: 0 });
      const { reason, owner, flow, error } = incident;
      const err = error === undefined ? undefined : error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) };
      this.log[incident.severity]({ reason, user: owner?.user, peer: owner?.id, flow, err }, messageFor(incident));
    } catch {
      // Logging is best effort; the counters still hold the event.
    }
  }

  /** Ends the bursts that went quiet and sums up the long ones; call it from a timer. */
  flush(now: number): void {
    for (const [reason, burst] of this.bursts) {
      const quiet = now - burst.lastAt >= QUIET_MS;
      if (burst.suppressed > 0 && (quiet || now - burst.summarizedAt >= SUMMARY_EVERY_MS)) {
        this.log[burst.severity]({ reason, more: burst.suppressed }, `${burst.suppressed} more ${reason} since the last line about it (not logged one by one)`);
        burst.suppressed = 0;
        burst.summarizedAt = now;
      }
      if (quiet) this.bursts.delete(reason);
    }
  }
}

function messageFor(i: StackIncident): string {
  if (i.reason === 'fd_limit') {
    return 'new flow refused: the process is near its file-descriptor limit (RLIMIT_NOFILE); raise it (systemd LimitNOFILE=, ulimit -n) if this is regular load';
  }
  if (i.severity === 'error') return `flow ended by an internal error (${i.reason}); only this flow was affected`;
  return `flow refused (${i.reason})`;
}
