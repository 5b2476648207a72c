import { NewReno, initialWindow } from '../../../../netstack/tcp/congestion';
import { Cubic } from '../../../../netstack/tcp/cubic';

const SMSS = 1000;

describe('NewReno congestion control (RFC 5681, RFC 6582)', () => {
  test('the initial window is min(10*SMSS, max(2*SMSS, 14600)) (RFC 6928)', () => {
    expect(initialWindow(1000)).toBe(10_000);
    expect(initialWindow(1460)).toBe(14_600);
    expect(initialWindow(9000)).toBe(18_000);
  });

  test('slow start grows cwnd by the bytes acknowledged, at most 2*SMSS per ACK (RFC 3465)', () => {
    const cc = new NewReno(SMSS);
    cc.onAck(1000, 10_000);
    expect(cc.cwnd).toBe(11_000);
    cc.onAck(5000, 10_000);
    expect(cc.cwnd).toBe(13_000);
  });

  test('congestion avoidance adds one SMSS per cwnd of acknowledged data', () => {
    const cc = new NewReno(SMSS);
    cc.onEnterRecovery(20_000);
    cc.onExitRecovery(20_000);
    expect(cc.cwnd).toBe(10_000);
    for (let i = 0; i < 9; i++) cc.onAck(1000, 10_000);
    expect(cc.cwnd).toBe(10_000);
    cc.onAck(1000, 10_000);
    expect(cc.cwnd).toBe(11_000);
  });

  test('loss detected by duplicate ACKs halves the window (RFC 5681 eq. 4)', () => {
    const cc = new NewReno(SMSS);
    cc.onEnterRecovery(30_000);
    expect(cc.ssthresh).toBe(15_000);
    expect(cc.cwnd).toBe(15_000);
  });

  test('ssthresh never drops below 2*SMSS', () => {
    const cc = new NewReno(SMSS);
    cc.onEnterRecovery(1000);
    expect(cc.ssthresh).toBe(2000);
  });

  test('an RTO sets cwnd to one segment (loss window)', () => {
    const cc = new NewReno(SMSS);
    cc.onRto(40_000);
    expect(cc.cwnd).toBe(SMSS);
    expect(cc.ssthresh).toBe(20_000);
  });

  test('an application-limited sender does not grow cwnd', () => {
    const cc = new NewReno(SMSS);
    cc.onAck(1000, 1000);
    expect(cc.cwnd).toBe(10_000);
  });

  test('after idle the window restarts at most at the initial window (RFC 5681 §4.1)', () => {
    const cc = new NewReno(SMSS);
    for (let i = 0; i < 50; i++) cc.onAck(2000, cc.cwnd);
    cc.onIdleRestart();
    expect(cc.cwnd).toBe(10_000);
  });
});

describe('CUBIC congestion control (RFC 9438)', () => {
  /** Acknowledges one window per RTT from `from` to `to` ms. */
  function runFor(cc: Cubic, from: number, to: number, rtt: number): void {
    for (let t = from; t < to; t += rtt) {
      const w = cc.cwnd;
      for (let acked = 0; acked < w; acked += SMSS) cc.onAck(SMSS, w, t, rtt);
    }
  }

  test('a loss reduces cwnd to beta = 0.7 of the window (§4.6)', () => {
    const cc = new Cubic(SMSS);
    cc.onEnterRecovery();
    cc.onExitRecovery();
    expect(cc.cwnd).toBe(7000);
  });

  test('the window returns to W_max after K = cbrt(W_max(1-beta)/C) seconds, then probes beyond (§4.2)', () => {
    const cc = new Cubic(SMSS);
    runFor(cc, 0, 400, 100); // slow start: 10 → 160 segments
    expect(cc.cwnd).toBe(160 * SMSS);
    cc.onEnterRecovery();
    cc.onExitRecovery();
    expect(cc.cwnd).toBe(112 * SMSS);
    const k = Math.cbrt((160 * 0.3) / 0.4) * 1000;
    runFor(cc, 10_000, 10_000 + k, 100);
    expect(cc.kSeconds * 1000).toBeCloseTo(k, 0);
    expect(cc.cwnd / SMSS).toBeGreaterThan(155);
    expect(cc.cwnd / SMSS).toBeLessThan(165);
    runFor(cc, 10_000 + k, 10_000 + 2 * k, 100);
    expect(cc.cwnd / SMSS).toBeGreaterThan(180); // convex region
  });

  test('an RTO sets cwnd to one segment and ssthresh to 0.7 cwnd', () => {
    const cc = new Cubic(SMSS);
    cc.onRto();
    expect(cc.cwnd).toBe(SMSS);
    expect(cc.ssthresh).toBe(7000);
  });

  test('fast convergence lowers W_max when losses come at a smaller window (§4.7)', () => {
    const cc = new Cubic(SMSS);
    cc.onEnterRecovery(); // W_max = 10 segments
    cc.onExitRecovery();
    cc.onEnterRecovery(); // at 7 < 10: W_max = 7 * 1.7 / 2
    cc.onExitRecovery();
    runFor(cc, 0, 100, 100);
    expect(cc.kSeconds).toBeCloseTo(Math.cbrt((5.95 - 4.9) / 0.4), 1);
  });
});
