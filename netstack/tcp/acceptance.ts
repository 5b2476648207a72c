// Which arriving segments a synchronized endpoint takes (RFC 9293 §3.10.7.4
// first check), and the RFC 5961 defences against blind in-window attacks:
// exact-match resets, challenge ACKs with a per-flow rate limit, and ACKs
// older than one window refused.
import { CHALLENGE_ACK_LIMIT } from './config';
import { Seq, seqAdd, seqGeq, seqInRange, seqLt } from './seq';

const CHALLENGE_ACK_WINDOW_MS = 1000;

/** RFC 9293 §3.10.7.4 first check, in the permissive form that accepts a
 *  segment starting at RCV.NXT even in a zero window so its ACK is processed. */
export function segmentAcceptable(seq: Seq, len: number, nxt: Seq, wnd: number): boolean {
  if (len === 0) return wnd === 0 ? seq === nxt : seqInRange(seq, nxt, seqAdd(nxt, wnd));
  const last = seqAdd(seq, len - 1);
  if (wnd === 0) return seq === nxt;
  return seqInRange(seq, nxt, seqAdd(nxt, wnd)) || seqInRange(last, nxt, seqAdd(nxt, wnd))
    || (seqLt(seq, nxt) && seqGeq(last, nxt));
}

/** RFC 5961 §3.2: reset only on an exact match, challenge anything else in window. */
export function rstAction(seq: Seq, nxt: Seq, wnd: number): 'reset' | 'challenge' | 'ignore' {
  if (seq === nxt) return 'reset';
  return seqInRange(seq, nxt, seqAdd(nxt, Math.max(1, wnd))) ? 'challenge' : 'ignore';
}

/** RFC 5961 §5.2: an ACK older than one maximum window is injected. */
export function ackTooOld(ack: Seq, sndUna: Seq, sndWnd: number): boolean {
  return seqLt(ack, seqAdd(sndUna, -Math.max(sndWnd, 65535)));
}

/**
 * RFC 5961 §7 asks to rate-limit challenge ACKs. The limit is per flow: a
 * global counter is itself a side channel (CVE-2016-5696).
 */
export class ChallengeAckLimiter {
  private windowStart = -Infinity;
  private count = 0;

  /** Whether one more challenge ACK may be sent at `now`. */
  allow(now: number): boolean {
    if (now - this.windowStart >= CHALLENGE_ACK_WINDOW_MS) {
      this.windowStart = now;
      this.count = 0;
    }
    return ++this.count <= CHALLENGE_ACK_LIMIT;
  }
}
