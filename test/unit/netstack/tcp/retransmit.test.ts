import { MAX_RTO_MS, MIN_RTO_MS, RttEstimator, SackScoreboard } from '../../../../netstack/tcp/retransmit';
import { asSeq } from '../../../../netstack/tcp/seq';

describe('RTO estimation (RFC 6298)', () => {
  test('starts at the initial RTO before any sample (§2.1)', () => {
    expect(new RttEstimator(1000).rto).toBe(1000);
  });

  test('first sample sets SRTT=R, RTTVAR=R/2, RTO=SRTT+4*RTTVAR (§2.2)', () => {
    const e = new RttEstimator(1000);
    e.sample(100);
    expect(e.srtt).toBe(100);
    expect(e.rttvar).toBe(50);
    expect(e.rto).toBe(300);
  });

  test('later samples smooth with alpha=1/8, beta=1/4 (§2.3)', () => {
    const e = new RttEstimator(1000);
    e.sample(100);
    e.sample(200);
    expect(e.rttvar).toBeCloseTo(0.75 * 50 + 0.25 * 100);
    expect(e.srtt).toBeCloseTo(0.875 * 100 + 0.125 * 200);
  });

  test('RTO is clamped to the minimum', () => {
    const e = new RttEstimator(1000);
    e.sample(1);
    expect(e.rto).toBe(MIN_RTO_MS);
  });

  test('backoff doubles the RTO up to the maximum (§5.5)', () => {
    const e = new RttEstimator(1000);
    e.backoff();
    expect(e.rto).toBe(2000);
    for (let i = 0; i < 20; i++) e.backoff();
    expect(e.rto).toBe(MAX_RTO_MS);
    e.resetBackoff();
    expect(e.rto).toBe(1000);
  });
});

describe('SACK scoreboard (RFC 6675 §3)', () => {
  const una = asSeq(100);
  const max = asSeq(10_000);

  test('merges overlapping blocks and counts SACKed bytes once', () => {
    const sb = new SackScoreboard();
    sb.update([[200, 300], [250, 400], [600, 700]], una, max);
    expect(sb.sackedBytes).toBe(300);
    expect(sb.highSacked).toBe(700);
  });

  test('ignores D-SACK blocks below SND.UNA and clips blocks beyond SND.NXT', () => {
    const sb = new SackScoreboard();
    expect(sb.update([[50, 90], [9_900, 20_000]], una, max)).toBe(100);
  });

  test('finds the holes between SACKed ranges', () => {
    const sb = new SackScoreboard();
    sb.update([[200, 300], [400, 500]], una, max);
    expect(sb.nextHole(una, asSeq(500))).toBe(true);
    expect([sb.holeStart, sb.holeEnd]).toEqual([100, 200]);
    expect(sb.nextHole(asSeq(200), asSeq(500))).toBe(true);
    expect([sb.holeStart, sb.holeEnd]).toEqual([300, 400]);
    expect(sb.nextHole(asSeq(400), asSeq(500))).toBe(false);
  });

  test('forgets ranges once cumulatively acknowledged', () => {
    const sb = new SackScoreboard();
    sb.update([[200, 300], [400, 500]], una, max);
    sb.ackTo(asSeq(450));
    expect(sb.sackedBytes).toBe(50);
    expect(sb.sackedIn(asSeq(450), asSeq(1000))).toBe(50);
  });
});
