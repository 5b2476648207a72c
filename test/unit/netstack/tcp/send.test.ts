import { ACK, FIN, TcpRepr } from '../../../../netstack/wire/tcp';
import { Cubic } from '../../../../netstack/tcp/cubic';
import { TcpEndpoint } from '../../../../netstack/tcp/endpoint';
import { BASE_OPTS, CLIENT_ISN, Flow, SERVER_ISN, bytes, establish, payloadOf, seg, synSeg } from './helpers';

const MSS = 1000;

function ackFrom(f: Flow, ack: number, now: number, extra: Partial<TcpRepr> = {}): TcpRepr[] {
  f.ep.onSegment(seg({ seq: f.cseq, ack: ack >>> 0, ...extra }), now);
  return f.ep.drainOutput();
}

describe('sending data to the client', () => {
  test('written data goes out in MSS-sized segments up to the initial window (RFC 6928)', () => {
    const f = establish({ mss: MSS });
    expect(f.ep.write(bytes(20_000), 10)).toBe(20_000);
    const out = f.ep.drainOutput();
    expect(out).toHaveLength(10);
    expect(out.every((s) => s.payload.length === MSS)).toBe(true);
    expect(out[0].seq).toBe(f.sseq);
    expect(out[9].seq).toBe(f.sseq + 9 * MSS);
    expect(f.ep.stats.bytesOut).toBe(10 * MSS);
  });

  test('a client announcing MSS 1 gets 536-byte segments, not a packet per byte', () => {
    const f = establish({ mss: 1 });
    f.ep.write(bytes(5000), 10);
    const out = f.ep.drainOutput();
    expect(out.map((s) => s.payload.length)).toEqual(Array(9).fill(536).concat([5000 - 9 * 536]));
  });

  test('a small write is sent at once (no Nagle delay for a relay)', () => {
    const f = establish({ mss: MSS });
    f.ep.write(Buffer.from('hi'), 10);
    expect(f.ep.drainOutput()[0].payload.toString()).toBe('hi');
  });

  test('the client window limits what is in flight', () => {
    const f = establish({ mss: MSS }, {}, undefined, 2500);
    f.ep.write(bytes(10_000), 10);
    expect(payloadOf(f.ep.drainOutput()).length).toBe(2000); // a 500-byte runt waits (sender SWS avoidance)
  });

  test('ACKs open the congestion window and release more data (slow start)', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(100_000), 10);
    f.ep.drainOutput();
    const cwnd0 = f.ep.cwnd;
    const more = ackFrom(f, f.sseq + 2 * MSS, 20);
    expect(f.ep.cwnd).toBe(cwnd0 + 2 * MSS);
    expect(more).toHaveLength(4); // two replaced + two from growth
  });

  test('write accepts only free send-buffer space, and writable fires when space frees', () => {
    const f = establish({ mss: MSS }, { sendBufferBytes: 8000 });
    expect(f.ep.write(bytes(10_000), 10)).toBe(8000);
    f.ep.drainOutput();
    ackFrom(f, f.sseq + 1000, 20);
    expect(f.ep.drainEvents()).toEqual([]); // under a quarter of the buffer is free
    ackFrom(f, f.sseq + 4000, 30);
    expect(f.ep.drainEvents()).toEqual([{ type: 'writable' }]);
    expect(f.ep.write(bytes(10_000), 40)).toBe(4000);
  });

  test('the bytes sent equal the bytes written, in order', () => {
    const f = establish({ mss: MSS });
    const data = bytes(5000, 7);
    f.ep.write(data.subarray(0, 1234), 10);
    f.ep.write(data.subarray(1234), 10);
    expect(payloadOf(f.ep.drainOutput())).toEqual(data);
  });
});

describe('retransmission timeout (RFC 6298)', () => {
  test('an unacknowledged segment is retransmitted after the RTO, with exponential backoff', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(500), 10);
    f.ep.drainOutput();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = f.ep.nextWakeAt() as number;
      f.ep.onTimer(t);
      const [r] = f.ep.drainOutput();
      expect(r.seq).toBe(f.sseq);
      expect(r.payload).toEqual(bytes(500));
      times.push(t);
    }
    expect(times).toEqual([1010, 3010, 7010]);
    expect(f.ep.stats.retransmits).toBe(3);
  });

  test('an RTO collapses cwnd to one segment and resends only the first lost segment', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(5000), 10);
    f.ep.drainOutput();
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    const out = f.ep.drainOutput();
    expect(out).toHaveLength(1);
    expect(f.ep.cwnd).toBe(MSS);
    // The ACK of the retransmission releases the next lost segments (slow start).
    const next = ackFrom(f, f.sseq + MSS, 1100);
    expect(next.map((s) => s.seq)).toEqual([f.sseq + 1000, f.sseq + 2000]);
  });

  test('a timestamp echo gives an RTT sample that sets the RTO (RFC 7323 §4)', () => {
    const f = establish({ mss: MSS, timestamp: { value: 1, echo: 0 } });
    f.ep.write(bytes(500), 100);
    const [s] = f.ep.drainOutput();
    ackFrom(f, f.sseq + 500, 150, { options: { timestamp: { value: 3, echo: s.options.timestamp?.value ?? 0 } } });
    expect(f.ep.srtt).toBe(50);
  });

  test('without timestamps the first ACK of a timed segment gives the sample (Karn)', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(500), 100);
    f.ep.drainOutput();
    ackFrom(f, f.sseq + 500, 180);
    expect(f.ep.srtt).toBe(80);
  });

  test('the flow gives up with a RST after too many retransmissions', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(500), 10);
    for (let i = 0; i < 40 && f.ep.state !== 'CLOSED'; i++) f.ep.onTimer(f.ep.nextWakeAt() as number);
    expect(f.ep.state).toBe('CLOSED');
    expect(f.ep.drainOutput().at(-1)?.flags).toBe(0x04 | ACK);
    expect(f.ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'timeout' });
  });
});

describe('fast retransmit and recovery', () => {
  test('three duplicate ACKs retransmit the missing segment before the RTO (RFC 5681 §3.2)', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    ackFrom(f, f.sseq + MSS, 20);
    expect(ackFrom(f, f.sseq + MSS, 21)).toEqual([]);
    ackFrom(f, f.sseq + MSS, 22);
    const rtx = ackFrom(f, f.sseq + MSS, 23);
    expect(rtx[0].seq).toBe(f.sseq + MSS);
    expect(rtx[0].payload.length).toBe(MSS);
    expect(f.ep.stats.fastRecoveries).toBe(1);
  });

  test('a partial ACK retransmits the next hole at once (NewReno, RFC 6582 §3.2 step 5)', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    for (let i = 0; i < 4; i++) ackFrom(f, f.sseq + MSS, 20 + i);
    const out = ackFrom(f, f.sseq + 3 * MSS, 40); // segment 4 was lost too
    expect(out[0].seq).toBe(f.sseq + 3 * MSS);
  });

  test('with SACK only the holes are retransmitted (RFC 6675)', () => {
    const f = establish({ mss: MSS, sackPermitted: true });
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    // Segments 0 and 3 lost; 1-2 and 4-9 SACKed.
    const s = f.sseq;
    const sack1: Array<[number, number]> = [[s + 1000, s + 3000]];
    const sack2: Array<[number, number]> = [[s + 4000, s + 10_000], [s + 1000, s + 3000]];
    const out = [...ackFrom(f, s, 20, { options: { sack: sack1 } }), ...ackFrom(f, s, 21, { options: { sack: sack2 } })];
    const rtx = out.filter((x) => x.payload.length > 0 && x.seq - s < 10_000);
    expect(rtx.map((x) => x.seq - s)).toEqual([0, 3000]);
  });

  test.each([
    // NewReno, the default: ssthresh is half the flight, and at the end cwnd deflates to min(ssthresh,
    // FlightSize + SMSS), at least 2 SMSS (RFC 6582 §3.2 step 3). CUBIC: ssthresh is β = 0.7 of the window,
    // where cwnd resumes (RFC 9438 §4.6).
    ['NewReno (the default)', undefined, 5000, 2000],
    ['CUBIC', (m: number) => new Cubic(m), 7000, 7000],
  ] as const)('recovery ends when the recovery point is acknowledged and cwnd is ssthresh-bounded (%s)', (_name, congestion, ssthresh, after) => {
    const f = establish({ mss: MSS, sackPermitted: true }, { congestion });
    f.ep.write(bytes(10_000), 10);
    f.ep.drainOutput();
    const s = f.sseq;
    ackFrom(f, s, 20, { options: { sack: [[s + 1000, s + 10_000]] } });
    expect(f.ep.stats.fastRecoveries).toBe(1);
    ackFrom(f, s + 10_000, 30);
    expect(f.ep.cwnd).toBeLessThanOrEqual(ssthresh);
    expect(f.ep.cwnd).toBe(after);
  });
});

describe('zero window from the client (persist timer, RFC 9293 §3.8.6.1)', () => {
  test('a zero window stops data and the persist timer sends probes with backoff', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(3000), 10);
    f.ep.drainOutput();
    expect(ackFrom(f, f.sseq + 3000, 20, { window: 0 })).toEqual([]);
    f.ep.write(bytes(3000), 30);
    expect(f.ep.drainOutput()).toEqual([]);
    const t1 = f.ep.nextWakeAt() as number;
    f.ep.onTimer(t1);
    const [probe] = f.ep.drainOutput();
    expect(probe.seq).toBe(f.sseq + 3000 - 1);
    expect(probe.payload.length).toBe(0);
    ackFrom(f, f.sseq + 3000, t1 + 1, { window: 0 });
    const t2 = f.ep.nextWakeAt() as number;
    expect(t2 - t1).toBeGreaterThanOrEqual(2 * (t1 - 30) - 5);
  });

  test('a window update from the client resumes sending', () => {
    const f = establish({ mss: MSS });
    f.ep.write(bytes(3000), 10);
    f.ep.drainOutput();
    ackFrom(f, f.sseq + 3000, 20, { window: 0 });
    f.ep.write(bytes(2000), 30);
    const out = ackFrom(f, f.sseq + 3000, 40, { window: 65535 });
    expect(payloadOf(out).length).toBe(2000);
  });

  test('a FIN is sent even into a zero window', () => {
    const f = establish({ mss: MSS });
    ackFrom(f, f.sseq, 20, { window: 0 });
    f.ep.shutdownWrite(30);
    const [fin] = f.ep.drainOutput();
    expect(fin.flags & FIN).toBe(FIN);
  });
});

describe('writes before the handshake completes', () => {
  test('data written while the connect is pending is sent once the client ACKs the SYN-ACK', () => {
    const ep = TcpEndpoint.fromSyn(synSeg({ mss: 1000 }), 0, BASE_OPTS);
    expect(ep.write(bytes(100), 0)).toBe(100);
    ep.accept(1);
    expect(ep.drainOutput()).toHaveLength(1); // only the SYN-ACK
    ep.onSegment(seg({ seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1 }), 2);
    const [data] = ep.drainOutput();
    expect(data.payload).toEqual(bytes(100));
    expect(data.seq).toBe(SERVER_ISN + 1);
  });
});
