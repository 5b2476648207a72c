// Sequence numbers crossing 2^32 on both sides (RFC 9293 §3.4).
import { ACK, FIN } from '../../../../netstack/wire/tcp';
import { bytes, establish, payloadOf, seg } from './helpers';

const C_ISN = 0xffff_fc00; // client data wraps after 1023 bytes
const S_ISN = 0xffff_fe00; // our data wraps after 511 bytes

describe('sequence wrap-around', () => {
  test('client data crossing 2^32 is delivered in order and ACKed with a wrapped number', () => {
    const f = establish({ mss: 1000 }, { isn: S_ISN }, C_ISN);
    const all = bytes(3000);
    for (let i = 0; i < 3; i++) f.ep.onSegment(seg({ seq: f.cseq + i * 1000, ack: f.sseq, payload: all.subarray(i * 1000, (i + 1) * 1000) }), 10 + i);
    f.ep.onTimer(100);
    const acks = f.ep.drainOutput();
    expect(acks.at(-1)?.ack).toBe((C_ISN + 1 + 3000) >>> 0);
    expect(f.ep.read()).toEqual(all);
  });

  test('out-of-order data across the wrap is reassembled and SACKed with wrapped edges', () => {
    const f = establish({ mss: 1000, sackPermitted: true }, { isn: S_ISN }, C_ISN);
    const all = bytes(3000);
    f.ep.onSegment(seg({ seq: f.cseq + 2000, ack: f.sseq, payload: all.subarray(2000) }), 10);
    expect(f.ep.drainOutput()[0].options.sack).toEqual([[(f.cseq + 2000) >>> 0, (f.cseq + 3000) >>> 0]]);
    f.ep.onSegment(seg({ seq: f.cseq + 1000, ack: f.sseq, payload: all.subarray(1000, 2000) }), 11);
    f.ep.onSegment(seg({ seq: f.cseq, ack: f.sseq, payload: all.subarray(0, 1000) }), 12);
    expect(f.ep.read()).toEqual(all);
  });

  test('our data crossing 2^32 is sent, acknowledged and closed with wrapped numbers', () => {
    const f = establish({ mss: 1000 }, { isn: S_ISN }, C_ISN);
    const data = bytes(3000, 9);
    f.ep.write(data, 10);
    f.ep.shutdownWrite(10);
    const out = f.ep.drainOutput();
    expect(payloadOf(out)).toEqual(data);
    expect(out.map((s) => s.seq)).toEqual([f.sseq, (f.sseq + 1000) >>> 0, (f.sseq + 2000) >>> 0, (f.sseq + 3000) >>> 0]);
    expect(out[3].flags).toBe(FIN | ACK);
    f.ep.onSegment(seg({ seq: f.cseq, ack: (f.sseq + 3001) >>> 0 }), 20);
    expect(f.ep.state).toBe('FIN-WAIT-2');
  });

  test('a retransmission across the wrap resends the right bytes', () => {
    const f = establish({ mss: 1000 }, { isn: S_ISN }, C_ISN);
    const data = bytes(2000, 3);
    f.ep.write(data, 10);
    f.ep.drainOutput();
    f.ep.onSegment(seg({ seq: f.cseq, ack: (f.sseq + 1000) >>> 0 }), 20);
    f.ep.onTimer(f.ep.nextWakeAt() as number);
    const [rtx] = f.ep.drainOutput();
    expect(rtx.seq).toBe((f.sseq + 1000) >>> 0);
    expect(rtx.payload).toEqual(data.subarray(1000));
  });
});
