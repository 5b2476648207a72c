// Congestion control for data we send to the client. The endpoint talks to a
// CongestionControl so the algorithm can be swapped (NewReno here; CUBIC,
// RFC 9438, would implement the same interface).

export interface CongestionControl {
  readonly cwnd: number;
  readonly ssthresh: number;
  /** New data acknowledged outside loss recovery; srttMs is the smoothed RTT (0 if unknown). */
  onAck(ackedBytes: number, flightSize: number, now: number, srttMs?: number): void;
  /** Loss detected by duplicate ACKs / SACK: RFC 5681 §3.2 step 2-3. */
  onEnterRecovery(flightSize: number, now: number): void;
  /** Recovery point acknowledged (RFC 6582 §3.2 step 3 "full acknowledgment"). */
  onExitRecovery(flightSize: number, now: number): void;
  /**
   * Retransmission timer expired: loss window, and RFC 5681 §3.1 eq. (4)
   * unless `newEvent` is false (a repeated timeout, or one inside a recovery
   * that already reduced ssthresh: one response per round).
   */
  onRto(flightSize: number, now: number, newEvent?: boolean): void;
  /** Sender was idle for more than an RTO: RFC 5681 §4.1 restart window. */
  onIdleRestart(now: number): void;
}

/** RFC 5681 §3.1 / RFC 6928: IW = min(10*SMSS, max(2*SMSS, 14600)). */
export function initialWindow(smss: number): number {
  return Math.min(10 * smss, Math.max(2 * smss, 14600));
}

export class NewReno implements CongestionControl {
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** bytes acknowledged since the last cwnd increase in congestion avoidance */
  private bytesAcked = 0;

  constructor(private readonly smss: number) {
    this.cwnd = initialWindow(smss);
  }

  onAck(ackedBytes: number, flightSize: number): void {
    // Do not grow a window that the sender is not using (RFC 7661 spirit):
    // an application-limited flow would otherwise inflate cwnd without bound.
    if (flightSize + ackedBytes < this.cwnd / 2) return;
    if (this.cwnd < this.ssthresh) {
      // Slow start with appropriate byte counting, L = 2*SMSS (RFC 3465 §2.2).
      this.cwnd += Math.min(ackedBytes, 2 * this.smss);
      return;
    }
    // Congestion avoidance: one SMSS per cwnd of acknowledged bytes (RFC 5681 §3.1).
    this.bytesAcked += ackedBytes;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.smss;
    }
  }

  onEnterRecovery(flightSize: number): void {
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.smss);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
  }

  onExitRecovery(flightSize: number): void {
    // RFC 6582 §3.2 step 3, option (1): deflate to min(ssthresh, FlightSize + SMSS).
    this.cwnd = Math.max(Math.min(this.ssthresh, flightSize + this.smss), 2 * this.smss);
  }

  onRto(flightSize: number, _now?: number, newEvent = true): void {
    if (newEvent) this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.smss);
    this.cwnd = this.smss;
    this.bytesAcked = 0;
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(this.smss));
  }
}
