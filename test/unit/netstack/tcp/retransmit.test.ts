import { MAX_RTO_MS, MAX_SACK_RANGES, MIN_RTO_MS, RttEstimator, SackScoreboard } from '../../../../netstack/tcp/retransmit';
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

  test(`a client SACKing every other byte gets at most ${MAX_SACK_RANGES} ranges; blocks that merge are still taken`, () => {
    const sb = new SackScoreboard();
    const top = asSeq(1_000_000);
    // One-byte blocks with one-byte gaps, three per ACK, in ascending order.
    for (let b = 102; b < 102 + 2 * 3000; b += 6) sb.update([[b, b + 1], [b + 2, b + 3], [b + 4, b + 5]], una, top);
    expect(sb.sackedBytes).toBe(MAX_SACK_RANGES);
    const high = sb.highSacked as number;
    // Past the bound, a block of its own is ignored; one that extends a range is not.
    expect(sb.update([[high + 10, high + 20]], una, top)).toBe(0);
    expect(sb.update([[high, high + 5]], una, top)).toBe(5);
    // One block covering the gaps merges them all into one range, and room comes back.
    expect(sb.update([[102, high + 5]], una, top)).toBe(high + 5 - 102 - MAX_SACK_RANGES - 5);
    expect(sb.update([[high + 10, high + 20]], una, top)).toBe(10);
    sb.nextHole(una, top);
    expect([sb.holeStart, sb.holeEnd]).toEqual([100, 102]);
  });

  test('blocks land in order wherever they arrive (the insertion point is searched, not walked)', () => {
    const sb = new SackScoreboard();
    const starts = [900, 100 + 2, 500, 700, 300, 1100];
    sb.update(starts.map((s) => [s, s + 50] as [number, number]), una, max);
    expect(sb.sackedBytes).toBe(6 * 50);
    const holes: number[][] = [];
    for (let from = una; sb.nextHole(from, asSeq(1200)); from = sb.holeEnd) holes.push([sb.holeStart, sb.holeEnd]);
    expect(holes).toEqual([[100, 102], [152, 300], [350, 500], [550, 700], [750, 900], [950, 1100], [1150, 1200]]);
  });
});
