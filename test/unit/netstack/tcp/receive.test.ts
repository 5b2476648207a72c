import { ACK, PSH } from '../../../../netstack/wire/tcp';
import { DELAYED_ACK_MS } from '../../../../netstack/tcp/config';
import { bytes, establish, seg } from './helpers';

describe('receiving data from the client', () => {
  test('in-order data is readable and the flow reports readable once', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(100), flags: ACK | PSH }), 10);
    ep.onSegment(seg({ seq: cseq + 100, ack: sseq, payload: bytes(50, 100) }), 11);
    expect(ep.drainEvents()).toEqual([{ type: 'readable' }]);
    expect(ep.read()).toEqual(bytes(150));
    expect(ep.read()).toBeNull();
    expect(ep.stats.bytesIn).toBe(150);
  });

  test('read(max) returns at most max bytes', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(300) }), 10);
    expect(ep.read(120)).toEqual(bytes(120));
    expect(ep.read(1000)).toEqual(bytes(180, 120));
  });

  test('the payload is copied: reusing the packet buffer does not change received data', () => {
    const { ep, cseq, sseq } = establish();
    const pkt = bytes(100);
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: pkt }), 10);
    pkt.fill(0);
    expect(ep.read()).toEqual(bytes(100));
  });

  test('one full segment is acknowledged after the delayed-ACK timeout, not at once (RFC 9293 §3.8.6.3)', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(1000) }), 10);
    expect(ep.drainOutput()).toEqual([]);
    expect(ep.nextWakeAt()).toBe(10 + DELAYED_ACK_MS);
    ep.onTimer(10 + DELAYED_ACK_MS);
    const [ack] = ep.drainOutput();
    expect(ack.ack).toBe(cseq + 1000);
  });

  test('every second full segment is acknowledged immediately (RFC 5681 §4.2)', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(1000) }), 10);
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(1000) }), 11);
    const out = ep.drainOutput();
    expect(out).toHaveLength(1);
    expect(out[0].ack).toBe(cseq + 2000);
  });

  test('inside a receive batch, one ACK at the batch end covers every in-order segment of it', () => {
    const { ep, cseq, sseq } = establish();
    for (let i = 0; i < 6; i++) ep.onSegment(seg({ seq: cseq + i * 1000, ack: sseq, payload: bytes(1000) }), 10, true);
    expect(ep.drainOutput()).toEqual([]);
    expect(ep.ackOwed).toBe(true);
    ep.sendOwedAck(11);
    const out = ep.drainOutput();
    expect(out).toHaveLength(1);
    expect(out[0].ack).toBe(cseq + 6000);
    expect(ep.ackOwed).toBe(false);
  });

  test('inside a receive batch, an out-of-order segment is still acknowledged at once (RFC 5681 §4.2)', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000, sackPermitted: true });
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(1000) }), 10, true);
    ep.onSegment(seg({ seq: cseq + 2000, ack: sseq, payload: bytes(1000) }), 10, true);
    const [dup] = ep.drainOutput();
    expect(dup.ack).toBe(cseq + 1000);
    expect(dup.options.sack).toEqual([[cseq + 2000, cseq + 3000]]);
  });

  test('a batch ACK that never gets its batch end goes out with the delayed-ACK timer', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(1000) }), 10, true);
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(1000) }), 10, true);
    expect(ep.nextWakeAt()).toBe(10 + DELAYED_ACK_MS);
    ep.onTimer(10 + DELAYED_ACK_MS);
    expect(ep.drainOutput().map((s) => s.ack)).toEqual([cseq + 2000]);
    ep.sendOwedAck(60);
    expect(ep.drainOutput()).toEqual([]);
  });

  test('an out-of-order segment draws an immediate duplicate ACK with a SACK block', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000, sackPermitted: true });
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(1000) }), 10);
    const [dup] = ep.drainOutput();
    expect(dup.ack).toBe(cseq);
    expect(dup.options.sack).toEqual([[cseq + 1000, cseq + 2000]]);
    expect(ep.read()).toBeNull();
  });

  test('no SACK option is sent when the client did not permit it', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(1000) }), 10);
    expect(ep.drainOutput()[0].options.sack).toBeUndefined();
  });

  test('out-of-order segments are reassembled once the hole fills and ACKed at once', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000, sackPermitted: true });
    const all = bytes(3000);
    ep.onSegment(seg({ seq: cseq + 2000, ack: sseq, payload: all.subarray(2000) }), 10);
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: all.subarray(1000, 2000) }), 11);
    ep.drainOutput();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: all.subarray(0, 1000) }), 12);
    const [ack] = ep.drainOutput();
    expect(ack.ack).toBe(cseq + 3000);
    expect(ack.options.sack).toBeUndefined();
    expect(ep.read()).toEqual(all);
  });

  test('SACK blocks list the most recently received block first (RFC 2018 §4)', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000, sackPermitted: true });
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(500) }), 10);
    ep.onSegment(seg({ seq: cseq + 3000, ack: sseq, payload: bytes(500) }), 11);
    const out = ep.drainOutput();
    expect(out[1].options.sack).toEqual([[cseq + 3000, cseq + 3500], [cseq + 1000, cseq + 1500]]);
  });

  test('a duplicate segment is ACKed at once and not delivered twice', () => {
    const { ep, cseq, sseq } = establish();
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(100) }), 10);
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(100) }), 11);
    const out = ep.drainOutput();
    expect(out.at(-1)?.ack).toBe(cseq + 100);
    expect(ep.read()).toEqual(bytes(100));
    expect(ep.stats.bytesIn).toBe(100);
  });

  test('a segment partially overlapping received data delivers only the new bytes', () => {
    const { ep, cseq, sseq } = establish();
    const all = bytes(300);
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: all.subarray(0, 200) }), 10);
    ep.onSegment(seg({ seq: cseq + 100, ack: sseq, payload: all.subarray(100, 300) }), 11);
    expect(ep.read()).toEqual(all);
  });

  test('a segment entirely outside the window is answered with an ACK and dropped (RFC 9293 §3.10.7.4)', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000 }, { recvBufferBytes: 4000 });
    ep.onSegment(seg({ seq: cseq + 10_000, ack: sseq, payload: bytes(100) }), 10);
    const [ack] = ep.drainOutput();
    expect(ack.ack).toBe(cseq);
    expect(ep.read()).toBeNull();
  });
});

describe('receive window coupled to the reader', () => {
  test('an undrained buffer shrinks the window to zero; draining sends a window update', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000 }, { recvBufferBytes: 4000 });
    for (let i = 0; i < 4; i++) ep.onSegment(seg({ seq: cseq + i * 1000, ack: sseq, payload: bytes(1000) }), 10 + i);
    const acks = ep.drainOutput();
    expect(acks.at(-1)?.window).toBe(0);
    expect(acks.at(-1)?.ack).toBe(cseq + 4000);
    // A further segment is outside the zero window: not accepted.
    ep.onSegment(seg({ seq: cseq + 4000, ack: sseq, payload: bytes(1000) }), 20);
    expect(ep.drainOutput()[0]).toMatchObject({ ack: cseq + 4000, window: 0 });
    // The reader drains: the window reopens and the client is told at once.
    expect(ep.read(2000)?.length).toBe(2000);
    const [update] = ep.drainOutput();
    expect(update.window).toBe(2000);
    expect(update.ack).toBe(cseq + 4000);
  });

  test('the window opens only by at least one MSS (receiver SWS avoidance, RFC 9293 §3.8.6.2.2)', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000 }, { recvBufferBytes: 4000 });
    for (let i = 0; i < 4; i++) ep.onSegment(seg({ seq: cseq + i * 1000, ack: sseq, payload: bytes(1000) }), 10 + i);
    ep.drainOutput();
    ep.read(10);
    expect(ep.drainOutput()).toEqual([]);
  });

  test('with window scaling the advertised field is shifted by our scale', () => {
    const { ep, cseq, sseq } = establish({ mss: 1000, windowScale: 2 }, { recvBufferBytes: 1 << 20 });
    ep.onSegment(seg({ seq: cseq, ack: sseq, payload: bytes(1000) }), 10);
    ep.onSegment(seg({ seq: cseq + 1000, ack: sseq, payload: bytes(1000) }), 11);
    const [ack] = ep.drainOutput();
    expect(ep.negotiated.rcvWscale).toBe(5);
    expect(ack.window).toBe(Math.floor(((1 << 20) - 2000) / 32));
  });
});
