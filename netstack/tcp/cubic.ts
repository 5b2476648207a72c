// CUBIC congestion control (RFC 9438) behind the same CongestionControl
// interface as NewReno. Windows are kept in bytes; the cubic function is
// evaluated in segments and seconds as in the RFC.
import { CongestionControl, initialWindow } from './congestion';

/** RFC 9438 §4.6 β_cubic */
export const BETA_CUBIC = 0.7;
/** RFC 9438 §5 C */
export const C_CUBIC = 0.4;
/** RFC 9438 §4.3 α_cubic = 3(1-β)/(1+β) for the Reno-friendly estimate */
const ALPHA_CUBIC = (3 * (1 - BETA_CUBIC)) / (1 + BETA_CUBIC);

export class Cubic implements CongestionControl {
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** W_max in segments: the window before the last reduction */
  private wMax = 0;
  /** the previous W_max, for fast convergence (RFC 9438 §4.7) */
  private wLastMax = 0;
  private k = 0;
  private epochStart: number | null = null;
  /** W_est in segments (RFC 9438 §4.3) */
  private wEst = 0;

  constructor(private readonly smss: number) {
    this.cwnd = initialWindow(smss);
  }

  onAck(ackedBytes: number, flightSize: number, now: number, srttMs = 0): void {
    if (flightSize + ackedBytes < this.cwnd / 2) return; // application-limited
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(ackedBytes, 2 * this.smss);
      return;
    }
    const segs = this.cwnd / this.smss;
    if (this.epochStart === null) {
      this.epochStart = now;
      this.wEst = segs;
      if (this.wMax < segs) {
        // No reduction seen yet (left slow start by ssthresh): start on the plateau.
        this.k = 0;
        this.wMax = segs;
      } else {
        this.k = Math.cbrt((this.wMax - segs) / C_CUBIC);
      }
    }
    const t = (now - this.epochStart + srttMs) / 1000;
    const d = t - this.k; // cubed by hand: `**` is a call into pow on every ACK
    const target = C_CUBIC * d * d * d + this.wMax;
    this.wEst += (ALPHA_CUBIC * ackedBytes) / this.cwnd;
    let next: number;
    if (target < this.wEst) {
      next = this.wEst; // Reno-friendly region (§4.3)
    } else {
      const capped = Math.min(Math.max(target, segs), 1.5 * segs);
      next = segs + ((capped - segs) * (ackedBytes / this.smss)) / segs;
    }
    this.cwnd = Math.max(this.cwnd, Math.floor(next * this.smss));
  }

  private reduce(): void {
    const segs = this.cwnd / this.smss;
    // Fast convergence (§4.7): release bandwidth to newer flows.
    this.wMax = segs < this.wLastMax ? (segs * (1 + BETA_CUBIC)) / 2 : segs;
    this.wLastMax = segs;
    this.ssthresh = Math.max(Math.floor(this.cwnd * BETA_CUBIC), 2 * this.smss);
    this.epochStart = null;
  }

  onEnterRecovery(): void {
    this.reduce();
    this.cwnd = this.ssthresh;
  }

  onExitRecovery(): void {
    this.cwnd = Math.max(this.ssthresh, 2 * this.smss);
  }

  onRto(_flightSize?: number, _now?: number, newEvent = true): void {
    if (newEvent) this.reduce();
    this.cwnd = this.smss;
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(this.smss));
    this.epochStart = null;
  }

  /** exposed for tests: K in seconds */
  get kSeconds(): number {
    return this.k;
  }
}
