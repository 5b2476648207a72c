// The persist timer (RFC 9293 §3.8.6.1): while the client advertises a zero
// window and nothing is in flight, probe it on an exponential back-off so a
// lost window update cannot stall the flow forever.
import { MAX_RETRANSMITS } from './config';
import { MAX_RTO_MS } from './retransmit';

export class PersistTimer {
  deadline: number | null = null;
  private backoff = 0;
  private unanswered = 0;

  /** An ACK arrived: the client is alive, so never give up on a zero window it keeps answering. */
  onAck(sndWnd: number): void {
    if (sndWnd > 0) this.backoff = 0;
    this.unanswered = 0;
  }

  /** Arms the timer while sending is `blocked` by a zero window, stops it otherwise. */
  update(blocked: boolean, now: number, rto: number): void {
    if (!blocked) {
      this.deadline = null;
      return;
    }
    if (this.deadline === null) this.deadline = now + this.interval(rto);
  }

  /**
   * The timer expired: the caller sends a window probe. Returns false when
   * too many probes went unanswered.
   */
  expired(now: number, rto: number): boolean {
    if (++this.unanswered > MAX_RETRANSMITS) return false;
    if (rto * 2 ** this.backoff < MAX_RTO_MS) this.backoff++;
    this.deadline = now + this.interval(rto);
    return true;
  }

  private interval(rto: number): number {
    return Math.min(rto * 2 ** this.backoff, MAX_RTO_MS);
  }
}
