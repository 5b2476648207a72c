// Loss detection of data sent to the client, packet by packet: RACK (RFC 8985
// §6), the tail loss probe (§7), PRR (RFC 6937) and one congestion response
// per round. Offsets below are relative to the server's first data byte.
import { TcpRepr } from '../../../../netstack/wire/tcp';
import { NewReno } from '../../../../netstack/tcp/congestion';
import { Prr } from '../../../../netstack/tcp/prr';
import { REO_WND_PERSIST, Rack } from '../../../../netstack/tcp/rack';
import { TcpEndpointOptions } from '../../../../netstack/tcp/endpoint';
import { Flow, bytes, establish, seg } from './helpers';

const MSS = 1000;

/** A flow with SACK (and timestamps) whose segments carry MSS bytes of data. */
function sackFlow(opts: { ts?: boolean; ep?: Partial<TcpEndpointOptions> } = {}): Flow {
  if (!opts.ts) return establish({ mss: MSS, sackPermitted: true }, opts.ep ?? {});
  // The timestamp option takes 12 bytes of each segment (RFC 7323 §3).
  return establish({ mss: MSS + 12, sackPermitted: true, timestamp: { value: 1, echo: 0 } }, { mss: MSS + 12, ...opts.ep });
}

/** The client's ACK of offset `ack` with SACK blocks (offsets) and optionally a TS echo. */
function ackFrom(f: Flow, ack: number, now: number, sack: Array<[number, number]> = [], echo?: number): TcpRepr[] {
  const options: TcpRepr['options'] = {};
  if (sack.length > 0) options.sack = sack.map(([l, r]) => [(f.sseq + l) >>> 0, (f.sseq + r) >>> 0]);
  if (echo !== undefined) options.timestamp = { value: 2, echo };
  f.ep.onSegment(seg({ seq: f.cseq, ack: (f.sseq + ack) >>> 0, options }), now);
  return f.ep.drainOutput();
}

const offsets = (f: Flow, out: TcpRepr[]) => out.filter((s) => s.payload.length > 0).map((s) => (s.seq - f.sseq) >>> 0);

/** Ten segments at t=10, the first ACKed at t=20 (RACK.rtt = min_RTT = 10 ms); segments 10-11 leave at t=20. */
function tenInFlight(): Flow {
  // The counts of new segments sent during recovery below are PRR's under NewReno's halving.
  const f = sackFlow({ ep: { congestion: (m) => new NewReno(m) } });
  f.ep.write(bytes(30_000), 10);
  f.ep.drainOutput();
  expect(offsets(f, ackFrom(f, 1000, 20))).toEqual([10_000, 11_000]);
  return f;
}

describe('RACK: time-based loss detection (RFC 8985 §6)', () => {
  test('segments sent before a SACKed later-sent segment are lost once RACK.rtt + reo_wnd has passed', () => {
    const f = tenInFlight();
    // Segment 10 (sent at 20) is SACKed at 31: everything sent at 10 and still missing is overdue.
    const out = ackFrom(f, 1000, 31, [[10_000, 11_000]]);
    expect(offsets(f, out)[0]).toBe(1000);
    expect(f.ep.stats.fastRecoveries).toBe(1);
    // Segment 11 went out with segment 10, not before it: not lost.
    expect(offsets(f, out)).not.toContain(11_000);
  });

  test('a hole is retransmitted by the reordering timer at xmit_ts + RACK.rtt + reo_wnd, not on the SACK', () => {
    const f = tenInFlight();
    // Segment 2 SACKed at 21; segment 1, sent at 10, may still arrive: reo_wnd = min_RTT/4 = 2.5 ms.
    const retransmitted = (out: TcpRepr[]) => offsets(f, out).filter((o) => o < 12_000);
    expect(retransmitted(ackFrom(f, 1000, 21, [[2000, 3000]]))).toEqual([]);
    expect(f.ep.nextWakeAt()).toBeCloseTo(23.5);
    f.ep.onTimer(23.5);
    expect(retransmitted(f.ep.drainOutput())).toEqual([1000]); // only the hole, not segments 3-9
    expect(f.ep.stats.rtoExpirations).toBe(0);
  });

  test('mild reordering inside the window causes no retransmission', () => {
    const f = tenInFlight();
    ackFrom(f, 1000, 21, [[2000, 3000]]);
    // Segment 1 arrives 1 ms late: only new data follows the ACK.
    expect(offsets(f, ackFrom(f, 3000, 22)).every((o) => o >= 12_000)).toBe(true);
    expect(f.ep.nextWakeAt()).not.toBeCloseTo(23.5);
    f.ep.onTimer(23.5);
    expect(offsets(f, f.ep.drainOutput())).toEqual([]);
    expect(f.ep.stats.retransmits).toBe(0);
    expect(f.ep.stats.fastRecoveries).toBe(0);
  });

  test('once reordering was seen, three SACKed segments beyond a late one wait for the window (unlike DupThresh)', () => {
    const f = tenInFlight();
    ackFrom(f, 1000, 21, [[2000, 3000]]);
    ackFrom(f, 3000, 22); // segment 1 arrived late: reordering seen
    expect(offsets(f, ackFrom(f, 3000, 23, [[4000, 7000]]))).not.toContain(3000);
    expect(f.ep.stats.retransmits).toBe(0);
  });

  test('a lost retransmission is detected when a segment sent after it is SACKed, without an RTO', () => {
    const f = tenInFlight();
    // Segment 1 alone is missing: it is resent at 31, followed by new data 12-14.
    expect(offsets(f, ackFrom(f, 1000, 31, [[2000, 11_000]]))).toEqual([1000, 12_000, 13_000, 14_000]);
    // At 45 the client SACKs segment 12, sent after the retransmission, but not segment 1.
    const sent = ackFrom(f, 1000, 45, [[2000, 13_000]]);
    expect(offsets(f, sent)[0]).toBe(1000);
    expect(f.ep.stats.rtoExpirations).toBe(0);
  });
});

describe('RACK reordering window adapts to D-SACKs (RFC 8985 §6.2 step 4)', () => {
  test('after a D-SACK reports a spurious retransmission, the same reordering no longer triggers one', () => {
    const f = tenInFlight();
    ackFrom(f, 1000, 21, [[2000, 3000]]);
    f.ep.onTimer(23.5); // segment 1 retransmitted: it was only late
    f.ep.drainOutput();
    ackFrom(f, 3000, 24); // the original arrives
    ackFrom(f, 3000, 24.5, [[1000, 2000]]); // D-SACK: the retransmission was a duplicate
    // Segment 3 is late now: with reo_wnd doubled to 5 ms the timer is at 10 + 15 + 5 = 30, not 27.5.
    ackFrom(f, 3000, 25, [[4000, 5000]]);
    expect(f.ep.nextWakeAt()).toBeCloseTo(30);
    const before = f.ep.stats.retransmits;
    ackFrom(f, 5000, 28); // segment 3 arrives within the wider window
    f.ep.onTimer(30);
    expect(f.ep.stats.retransmits).toBe(before);
  });

  test('reo_wnd grows by min_RTT/4 per D-SACK round and returns to min_RTT/4 after 16 recoveries without one', () => {
    const rack = new Rack();
    rack.onDelivered(0, 1000 as never, false, 40); // min_RTT = 40 ms
    rack.updateReoWnd(true, 0 as never, 5000 as never, false);
    expect(rack.reoWnd(false, 0, 100)).toBe(20);
    rack.updateReoWnd(true, 100 as never, 5000 as never, false); // same round: counted once
    expect(rack.reoWnd(false, 0, 100)).toBe(20);
    for (let i = 0; i < REO_WND_PERSIST; i++) rack.updateReoWnd(false, 6000 as never, 9000 as never, true);
    expect(rack.reoWnd(false, 0, 100)).toBe(10);
  });

  test('reo_wnd never exceeds SRTT', () => {
    const rack = new Rack();
    rack.onDelivered(0, 1000 as never, false, 40);
    for (let round = 0; round < 10; round++) rack.updateReoWnd(true, (round * 10_000) as never, ((round + 1) * 10_000) as never, false);
    expect(rack.reoWnd(false, 0, 60)).toBe(60);
  });
});

describe('tail loss probe (RFC 8985 §7)', () => {
  /** Four segments at t=100 with timestamps; the first two ACKed at 150 (SRTT 50 ms, RTO 200 ms). */
  function tail(): Flow {
    const f = sackFlow({ ts: true });
    f.ep.write(bytes(4000), 100);
    f.ep.drainOutput();
    ackFrom(f, 2000, 150, [], 100);
    expect(f.ep.srtt).toBe(50);
    return f;
  }

  test('a tail loss is probed after PTO = 2*SRTT (+2 ms), well before the RTO, with the last segment', () => {
    const f = tail();
    expect(f.ep.nextWakeAt()).toBe(150 + 2 * 50 + 2);
    f.ep.onTimer(252);
    const probe = f.ep.drainOutput();
    expect(offsets(f, probe)).toEqual([3000]);
    expect(f.ep.stats.lossProbes).toBe(1);
    // The probe's SACK exposes segment 2 to RACK, which repairs it: no RTO at all.
    expect(offsets(f, ackFrom(f, 2000, 302, [[3000, 4000]], 252))).toEqual([2000]);
    ackFrom(f, 4000, 352, [], 302);
    expect(f.ep.stats.rtoExpirations).toBe(0);
    expect(f.ep.nextWakeAt()).toBeNull();
  });

  test('the probe is new data when the window allows it, even with cwnd full', () => {
    const f = sackFlow({ ts: true });
    f.ep.write(bytes(30_000), 100);
    f.ep.drainOutput();
    expect(offsets(f, ackFrom(f, 2000, 150, [], 100))).toEqual([10_000, 11_000, 12_000, 13_000]);
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    expect(offsets(f, f.ep.drainOutput())).toEqual([14_000]);
  });

  test('a single outstanding segment waits for a worst-case delayed ACK, and is probed instead of timed out', () => {
    const f = tail();
    ackFrom(f, 3000, 160, [], 100);
    // PTO = 2*SRTT + WCDelAckT (200 ms), capped at the RTO.
    const t = f.ep.nextWakeAt() as number;
    expect(t).toBeGreaterThan(160 + 100);
    f.ep.onTimer(t);
    expect(offsets(f, f.ep.drainOutput())).toEqual([3000]);
    expect(f.ep.stats.rtoExpirations).toBe(0);
    expect(f.ep.cwnd).toBeGreaterThan(MSS); // no RTO collapse
  });

  test('if the probe is lost too, the RTO (the last resort) follows one RTO after the probe', () => {
    const f = tail();
    f.ep.onTimer(252);
    f.ep.drainOutput();
    expect(f.ep.nextWakeAt()).toBe(252 + 200);
    f.ep.onTimer(452);
    expect(f.ep.stats.rtoExpirations).toBe(1);
    expect(offsets(f, f.ep.drainOutput())).toEqual([2000]);
  });

  /** Segment 3 lost, segment 2 ACKed at 160: the probe (segment 3 again) goes out at 360. */
  function probedTail(): { f: Flow; cc: () => NewReno } {
    let cc: NewReno | null = null;
    const f = sackFlow({ ts: true, ep: { congestion: (m) => (cc = new NewReno(m)) } });
    f.ep.write(bytes(4000), 100);
    f.ep.drainOutput();
    ackFrom(f, 2000, 150, [], 100);
    ackFrom(f, 3000, 160, [], 100);
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    expect(offsets(f, f.ep.drainOutput())).toEqual([3000]);
    return { f, cc: () => cc as unknown as NewReno };
  }

  test('a probe that repaired a loss (no D-SACK for it) reduces cwnd once, without a recovery', () => {
    const { f, cc } = probedTail();
    const cwnd = f.ep.cwnd;
    ackFrom(f, 4000, 410, [], 360);
    f.ep.write(bytes(1000), 411);
    f.ep.drainOutput();
    ackFrom(f, 5000, 461, [], 411); // beyond the probe, and no D-SACK ever came
    expect(cc().ssthresh).toBe(2 * MSS); // FlightSize/2 of the one-segment flight, at least 2 SMSS
    expect(f.ep.cwnd).toBeLessThan(cwnd);
    expect(f.ep.stats.fastRecoveries).toBe(0);
  });

  test('a probe reported as a duplicate by D-SACK leaves cwnd alone', () => {
    const { f, cc } = probedTail();
    ackFrom(f, 4000, 410, [], 360); // the original arrived after all...
    ackFrom(f, 4000, 411, [[3000, 4000]], 360); // ...and the probe was a duplicate
    f.ep.write(bytes(1000), 412);
    f.ep.drainOutput();
    ackFrom(f, 5000, 462, [], 412);
    expect(cc().ssthresh).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('congestion response to loss: once per round, PRR during recovery', () => {
  function withCc(): { f: Flow; cc: () => NewReno } {
    let cc: NewReno | null = null;
    const f = sackFlow({ ep: { congestion: (m) => (cc = new NewReno(m)) } });
    return { f, cc: () => cc as unknown as NewReno };
  }

  test('three losses in one window halve ssthresh once and start one recovery', () => {
    const { f, cc } = withCc();
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    const out = ackFrom(f, 0, 20, [[7000, 10_000], [4000, 6000], [1000, 3000]]);
    expect(offsets(f, out).slice(0, 3)).toEqual([0, 3000, 6000]);
    expect(cc().ssthresh).toBe(5000);
    ackFrom(f, 10_000, 30);
    expect(f.ep.stats.fastRecoveries).toBe(1);
    expect(cc().ssthresh).toBe(5000);
  });

  test('an RTO inside a recovery that already reduced ssthresh, and a repeated RTO, leave ssthresh alone', () => {
    const { f, cc } = withCc();
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    ackFrom(f, 0, 20, [[1000, 10_000]]);
    expect(cc().ssthresh).toBe(5000);
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    expect(f.ep.stats.rtoExpirations).toBe(1);
    expect(f.ep.cwnd).toBe(MSS);
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    expect(f.ep.stats.rtoExpirations).toBe(2);
    expect(cc().ssthresh).toBe(5000);
  });

  test('PRR spreads the reduction: while pipe > ssthresh, sends ssthresh/RecoverFS of what is delivered', () => {
    const prr = new Prr();
    prr.start(20_000);
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      const pipe = 19_000 - i * 1000 + sent;
      prr.onAck(1000, pipe, 10_000, MSS);
      const n = Math.max(0, prr.cwnd - pipe);
      prr.onSend(n);
      sent += n;
    }
    expect(sent).toBe(5000);
  });

  test('PRR-SSRB: below ssthresh, sends at most what was delivered plus one MSS per ACK', () => {
    const prr = new Prr();
    prr.start(10_000);
    prr.onAck(3000, 2000, 5000, MSS);
    expect(prr.cwnd - 2000).toBe(3000);
    prr.onSend(3000);
    prr.onAck(1000, 4000, 5000, MSS);
    expect(prr.cwnd - 4000).toBe(1000);
  });

  test('the first retransmission of a recovery is sent even when PRR allows nothing yet', () => {
    const prr = new Prr();
    prr.start(10_000);
    prr.onAck(0, 9000, 5000, MSS);
    expect(prr.cwnd - 9000).toBe(MSS);
  });
});
