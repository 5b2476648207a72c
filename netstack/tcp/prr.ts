// Proportional Rate Reduction (RFC 6937): during fast recovery the window
// shrinks towards ssthresh in step with the data the client reports
// delivered, instead of halving at once and then sending nothing for half an
// RTT (or bursting when losses are many).

export class Prr {
  /** prr_delivered: bytes delivered to the client since recovery began */
  private delivered = 0;
  /** prr_out: bytes sent since recovery began */
  private out = 0;
  /** RecoverFS: FlightSize when recovery began */
  private recoverFs = 1;
  /** cwnd for the sender until the next ACK: pipe + sndcnt */
  cwnd = 0;

  /** RFC 6937 §3 initialization on entering recovery. */
  start(flightSize: number): void {
    this.delivered = 0;
    this.out = 0;
    this.recoverFs = Math.max(1, flightSize);
    this.cwnd = 0;
  }

  /**
   * RFC 6937 §3 on every ACK in recovery (and on a reordering timeout, with
   * deliveredData 0): sets cwnd = pipe + sndcnt, with the slow-start
   * reduction bound (PRR-SSRB) once pipe has fallen below ssthresh.
   */
  onAck(deliveredData: number, pipe: number, ssthresh: number, smss: number): void {
    if (deliveredData > 0) this.delivered += deliveredData;
    let sndcnt: number;
    if (pipe > ssthresh) {
      sndcnt = Math.ceil((this.delivered * ssthresh) / this.recoverFs) - this.out;
    } else {
      sndcnt = Math.min(ssthresh - pipe, Math.max(this.delivered - this.out, deliveredData) + smss);
    }
    // The first retransmission goes out at once (RFC 6675 §5 step 4.2, as Linux does under PRR).
    if (this.out === 0 && sndcnt < smss) sndcnt = smss;
    this.cwnd = pipe + Math.max(0, sndcnt);
  }

  /** Every byte sent (new or retransmitted) during recovery. */
  onSend(bytes: number): void {
    this.out += bytes;
  }
}
