import { NewReno, initialWindow } from '../../../../netstack/tcp/congestion';

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
