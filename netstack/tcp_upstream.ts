// The I/O edge of a new TCP flow: its handler opens the upstream (a socket,
// the TLS engine, the portal) asynchronously. The outcome arrives outside any
// call into the stack, so this is where the edge clock is read, and `now`
// goes with the outcome to the flow table.
import type { Clock } from './clock';
import type { TcpUpstream } from './egress/tcp_socket';

export interface UpstreamOutcome {
  accepted(upstream: TcpUpstream, now: number): void;
  /** The handler rejected (with TcpOpenError for a refusal, anything else is a bug). */
  refused(err: unknown, now: number): void;
  /** accepted() or refused() threw: the flow's own failure, never an unhandled rejection. */
  failed(err: unknown, now: number): void;
}

/** Runs `open`; a handler that throws at once is refused like one that rejects. */
export function openUpstream(open: () => Promise<TcpUpstream>, clock: Clock, outcome: UpstreamOutcome): void {
  new Promise<TcpUpstream>((resolve) => resolve(open()))
    .then(
      (upstream) => outcome.accepted(upstream, clock()),
      (err: unknown) => outcome.refused(err, clock()),
    )
    .catch((err: unknown) => outcome.failed(err, clock()));
}
