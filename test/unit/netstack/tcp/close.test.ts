import { ACK, FIN, RST, SYN } from '../../../../netstack/wire/tcp';
import { bytes, establish, seg } from './helpers';

const MSL = 1000; // BASE_OPTS.msl

describe('connection close (RFC 9293 §3.6)', () => {
  test('a client FIN is ACKed at once, reported as peer_fin, and moves to CLOSE-WAIT', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, flags: FIN | ACK, payload: bytes(10) }), 10);
    const [ack] = f.ep.drainOutput();
    expect(ack.ack).toBe(f.cseq + 11);
    expect(f.ep.state).toBe('CLOSE-WAIT');
    expect(f.ep.drainEvents()).toEqual([{ type: 'readable' }, { type: 'peer_fin' }]);
    expect(f.ep.read()).toEqual(bytes(10));
  });

  test('after the client half-closes we keep sending, then our FIN ends the flow via LAST-ACK', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, flags: FIN | ACK }), 10);
    f.ep.drainOutput();
    expect(f.ep.write(bytes(300), 20)).toBe(300);
    f.ep.shutdownWrite(20);
    const out = f.ep.drainOutput();
    expect(out.map((s) => s.payload.length)).toEqual([300, 0]);
    expect(out[1]).toMatchObject({ flags: FIN | ACK, seq: f.sseq + 300 });
    expect(f.ep.state).toBe('LAST-ACK');
    f.ep.onSegment(seg({ seq: f.cseq + 1, ack: f.sseq + 301 }), 30);
    expect(f.ep.state).toBe('CLOSED');
    expect(f.ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'fin' });
  });

  test('our FIN goes after queued data; we still receive in FIN-WAIT-2 (half-close)', () => {
    const f = establish({ mss: 1000 }, {}, undefined, 0); // zero window: the data is only queued
    f.ep.write(bytes(100), 10);
    f.ep.shutdownWrite(10);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, window: 65535 }), 10);
    expect(f.ep.state).toBe('FIN-WAIT-1');
    expect(f.ep.write(bytes(10), 10)).toBe(0);
    const [dataFin] = f.ep.drainOutput();
    expect(dataFin.flags & FIN).toBe(FIN); // the FIN rides on the last data segment
    expect(dataFin.payload).toEqual(bytes(100));
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 101 }), 20);
    expect(f.ep.state).toBe('FIN-WAIT-2');
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 101, payload: bytes(50) }), 30);
    expect(f.ep.read()).toEqual(bytes(50));
  });

  test('the client FIN in FIN-WAIT-2 leads to TIME-WAIT, which expires after 2*MSL', () => {
    const f = establish();
    f.ep.shutdownWrite(10);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1 }), 20);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1, flags: FIN | ACK }), 30);
    expect(f.ep.state).toBe('TIME-WAIT');
    expect(f.ep.drainOutput().at(-1)?.ack).toBe(f.cseq + 1);
    expect(f.ep.nextWakeAt()).toBe(30 + 2 * MSL);
    f.ep.onTimer(30 + 2 * MSL - 1);
    expect(f.ep.state).toBe('TIME-WAIT');
    f.ep.onTimer(30 + 2 * MSL);
    expect(f.ep.state).toBe('CLOSED');
    expect(f.ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'fin' });
  });

  test('a retransmitted FIN in TIME-WAIT is ACKed again and restarts the 2*MSL timer', () => {
    const f = establish();
    f.ep.shutdownWrite(10);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1, flags: FIN | ACK }), 20);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1 }), 20);
    expect(f.ep.state).toBe('TIME-WAIT');
    f.ep.drainOutput();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1, flags: FIN | ACK }), 500);
    expect(f.ep.drainOutput()).toHaveLength(1);
    expect(f.ep.nextWakeAt()).toBe(500 + 2 * MSL);
  });

  test('a new SYN above RCV.NXT may reuse the 4-tuple of a flow in TIME-WAIT (RFC 6191)', () => {
    const f = establish();
    f.ep.shutdownWrite(10);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 1, flags: FIN | ACK }), 20);
    expect(f.ep.state).toBe('TIME-WAIT');
    expect(f.ep.acceptsNewSyn(seg({ seq: f.cseq + 100_000, flags: SYN }))).toBe(true);
    expect(f.ep.acceptsNewSyn(seg({ seq: f.cseq - 5, flags: SYN }))).toBe(false);
  });

  test('simultaneous close goes FIN-WAIT-1 → CLOSING → TIME-WAIT', () => {
    const f = establish();
    f.ep.shutdownWrite(10);
    f.ep.drainOutput();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, flags: FIN | ACK }), 20); // FIN crossing ours
    expect(f.ep.state).toBe('CLOSING');
    expect(f.ep.drainOutput()[0].ack).toBe(f.cseq + 1);
    f.ep.onSegment(seg({ seq: f.cseq + 1, ack: f.sseq + 1 }), 30);
    expect(f.ep.state).toBe('TIME-WAIT');
  });

  test('an unacknowledged FIN is retransmitted by the RTO', () => {
    const f = establish();
    f.ep.shutdownWrite(10);
    f.ep.drainOutput();
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    const [again] = f.ep.drainOutput();
    expect(again.flags & FIN).toBe(FIN);
    expect(again.seq).toBe(f.sseq);
  });

  test('a client FIN beyond a hole waits for the hole to fill', () => {
    const f = establish({ mss: 1000, sackPermitted: true });
    f.ep.onSegment(seg({ seq: f.cseq + 100, ack: f.sseq, flags: FIN | ACK, payload: bytes(100, 100) }), 10);
    expect(f.ep.state).toBe('ESTABLISHED');
    expect(f.ep.drainOutput()[0].ack).toBe(f.cseq);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, payload: bytes(100) }), 20);
    expect(f.ep.state).toBe('CLOSE-WAIT');
    expect(f.ep.drainOutput()[0].ack).toBe(f.cseq + 201);
    expect(f.ep.read()).toEqual(bytes(200));
  });

  test('abort() sends RST with SEQ=SND.NXT and closes', () => {
    const f = establish();
    f.ep.write(bytes(100), 10);
    f.ep.drainOutput();
    f.ep.abort(20);
    const [rst] = f.ep.drainOutput();
    expect(rst.flags & RST).toBe(RST);
    expect(rst.seq).toBe(f.sseq + 100);
    expect(f.ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'aborted' });
  });

  test('a segment reaching a closed endpoint is answered with a RST', () => {
    const f = establish();
    f.ep.abort(10);
    f.ep.drainOutput();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, payload: bytes(5) }), 20);
    expect(f.ep.drainOutput()[0]).toMatchObject({ flags: RST, seq: f.sseq });
  });
});

describe('RST and SYN attacks on an established flow (RFC 5961)', () => {
  test('a RST with SEQ exactly RCV.NXT resets the flow', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq, flags: RST }), 10);
    expect(f.ep.state).toBe('CLOSED');
    expect(f.ep.drainOutput()).toEqual([]);
    expect(f.ep.drainEvents()).toEqual([{ type: 'closed', reason: 'rst_received' }]);
  });

  test('a RST in the window but not exact draws a challenge ACK and keeps the flow (§3.2)', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq + 500, flags: RST }), 10);
    expect(f.ep.state).toBe('ESTABLISHED');
    const [ack] = f.ep.drainOutput();
    expect(ack).toMatchObject({ flags: ACK, seq: f.sseq, ack: f.cseq });
    expect(f.ep.stats.challengeAcks).toBe(1);
  });

  test('challenge ACKs are rate-limited per flow (§7) so RST floods cannot amplify', () => {
    const f = establish();
    for (let i = 0; i < 50; i++) f.ep.onSegment(seg({ seq: f.cseq + 100 + i, flags: RST }), 10);
    expect(f.ep.drainOutput()).toHaveLength(10);
    f.ep.onSegment(seg({ seq: f.cseq + 100, flags: RST }), 1010);
    expect(f.ep.drainOutput()).toHaveLength(1);
  });

  test('a RST outside the window is dropped silently', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq + 10_000_000, flags: RST }), 10);
    expect(f.ep.state).toBe('ESTABLISHED');
    expect(f.ep.drainOutput()).toEqual([]);
  });

  test('a SYN on an established flow draws a challenge ACK (§4)', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq + 7, flags: SYN }), 10);
    expect(f.ep.state).toBe('ESTABLISHED');
    expect(f.ep.drainOutput()[0]).toMatchObject({ flags: ACK, ack: f.cseq });
  });

  test('an ACK for data never sent is answered with an ACK and ignored', () => {
    const f = establish();
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq + 5000, payload: bytes(10) }), 10);
    expect(f.ep.drainOutput()[0].ack).toBe(f.cseq);
    expect(f.ep.read()).toBeNull();
  });

  test('PAWS drops a segment whose timestamp is older than TS.Recent (RFC 7323 §5)', () => {
    const f = establish({ mss: 1000, timestamp: { value: 1, echo: 0 } });
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, payload: bytes(10), options: { timestamp: { value: 100, echo: 0 } } }), 10);
    f.ep.read();
    f.ep.onSegment(seg({ seq: f.cseq + 10, ack: f.sseq, payload: bytes(10), options: { timestamp: { value: 50, echo: 0 } } }), 20);
    expect(f.ep.read()).toBeNull();
  });
});

describe('idle timeout and keepalive (RFC 9293 §3.8.4)', () => {
  test('a flow without traffic for idleTimeoutMs is reset', () => {
    const f = establish({ mss: 1000 }, { idleTimeoutMs: 5000 });
    expect(f.ep.nextWakeAt()).toBe(1 + 5000);
    f.ep.onTimer(5001);
    expect(f.ep.state).toBe('CLOSED');
    expect(f.ep.drainOutput()[0].flags & RST).toBe(RST);
    expect(f.ep.drainEvents()).toEqual([{ type: 'closed', reason: 'timeout' }]);
  });

  test('traffic from the client postpones the idle timeout', () => {
    const f = establish({ mss: 1000 }, { idleTimeoutMs: 5000 });
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, payload: bytes(1) }), 4000);
    f.ep.onTimer(5001);
    expect(f.ep.state).toBe('ESTABLISHED');
  });

  test('keepalive probes carry SEQ=SND.UNA-1 and an answer keeps the flow', () => {
    const f = establish({ mss: 1000 }, { keepaliveMs: 1000, keepaliveIntervalMs: 100 });
    f.ep.onTimer(1001);
    const [probe] = f.ep.drainOutput();
    expect(probe).toMatchObject({ seq: f.sseq - 1, flags: ACK });
    expect(probe.payload.length).toBe(0);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq }), 1050);
    expect(f.ep.nextWakeAt()).toBe(2050);
  });

  test('unanswered keepalives end the flow with a RST', () => {
    const f = establish({ mss: 1000 }, { keepaliveMs: 1000, keepaliveIntervalMs: 100 });
    for (let i = 0; i < 20 && f.ep.state !== 'CLOSED'; i++) f.ep.onTimer(f.ep.nextWakeAt() as number);
    const out = f.ep.drainOutput();
    expect(out.filter((s) => s.flags === ACK)).toHaveLength(9);
    expect((out.at(-1)?.flags ?? 0) & RST).toBe(RST);
    expect(f.ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'timeout' });
  });
});
