import { ACK, FIN, RST, SYN } from '../../../../netstack/wire/tcp';
import { TcpEndpoint } from '../../../../netstack/tcp/endpoint';
import { mssForMtu, rstForUnknownSegment } from '../../../../netstack/tcp/options';
import { BASE_OPTS, CLIENT_ISN, CLIENT_PORT, SERVER_ISN, SERVER_PORT, bytes, seg, synSeg } from './helpers';

function synAckFor(options: Parameters<typeof synSeg>[0], opts = {}) {
  const ep = TcpEndpoint.fromSyn(synSeg(options), 0, { ...BASE_OPTS, ...opts });
  ep.accept(0);
  const out = ep.drainOutput();
  expect(out).toHaveLength(1);
  return { ep, synAck: out[0] };
}

describe('passive open held until the upstream connect resolves', () => {
  test('a SYN produces no segment before accept() (the client must not see an open port yet)', () => {
    const ep = TcpEndpoint.fromSyn(synSeg(), 0, BASE_OPTS);
    expect(ep.state).toBe('PENDING');
    expect(ep.drainOutput()).toEqual([]);
    ep.onSegment(synSeg(), 1000); // client retransmits its SYN
    expect(ep.drainOutput()).toEqual([]);
  });

  test('accept() answers SYN-ACK with ack = client ISN + 1 and enters SYN-RECEIVED', () => {
    const { ep, synAck } = synAckFor({ mss: 1460 });
    expect(synAck.flags).toBe(SYN | ACK);
    expect(synAck.seq).toBe(SERVER_ISN);
    expect(synAck.ack).toBe(CLIENT_ISN + 1);
    expect([synAck.srcPort, synAck.dstPort]).toEqual([SERVER_PORT, CLIENT_PORT]);
    expect(ep.state).toBe('SYN-RECEIVED');
  });

  test('refuse() answers RST|ACK with seq 0 and ack = SYN seq + 1 (RFC 9293 §3.10.7.1)', () => {
    const ep = TcpEndpoint.fromSyn(synSeg(), 0, BASE_OPTS);
    ep.refuse(5);
    const [rst] = ep.drainOutput();
    expect(rst.flags).toBe(RST | ACK);
    expect(rst.seq).toBe(0);
    expect(rst.ack).toBe(CLIENT_ISN + 1);
    expect(ep.state).toBe('CLOSED');
    expect(ep.drainEvents()).toEqual([{ type: 'closed', reason: 'refused' }]);
  });

  test('the third ACK completes the handshake', () => {
    const { ep, synAck } = synAckFor({});
    ep.onSegment(seg({ seq: CLIENT_ISN + 1, ack: synAck.seq + 1 }), 10);
    expect(ep.state).toBe('ESTABLISHED');
    expect(ep.drainEvents()).toEqual([{ type: 'established' }]);
  });

  test('an ACK for the wrong ISN in SYN-RECEIVED draws a RST with seq = SEG.ACK', () => {
    const { ep } = synAckFor({});
    ep.onSegment(seg({ seq: CLIENT_ISN + 1, ack: 12345 }), 10);
    const [rst] = ep.drainOutput();
    expect(rst.flags).toBe(RST);
    expect(rst.seq).toBe(12345);
    expect(ep.state).toBe('SYN-RECEIVED');
  });

  test('a repeated SYN after accept() gets the SYN-ACK again', () => {
    const { ep, synAck } = synAckFor({});
    ep.onSegment(synSeg(), 500);
    const [again] = ep.drainOutput();
    expect(again.flags).toBe(SYN | ACK);
    expect(again.seq).toBe(synAck.seq);
  });

  test('a lost SYN-ACK is retransmitted with exponential backoff, then the flow times out', () => {
    const { ep } = synAckFor({});
    const times: number[] = [];
    for (let i = 0; i < 10 && ep.state !== 'CLOSED'; i++) {
      const t = ep.nextWakeAt();
      if (t === null) break;
      ep.onTimer(t);
      if (ep.drainOutput().some((s) => s.flags === (SYN | ACK))) times.push(t);
    }
    expect(times.slice(0, 3)).toEqual([1000, 3000, 7000]);
    expect(ep.state).toBe('CLOSED');
    expect(ep.drainEvents()).toContainEqual({ type: 'closed', reason: 'timeout' });
  });

  test('a client RST while the connect is pending closes the flow silently', () => {
    const ep = TcpEndpoint.fromSyn(synSeg(), 0, BASE_OPTS);
    ep.onSegment(seg({ seq: CLIENT_ISN + 1, flags: RST }), 5);
    expect(ep.state).toBe('CLOSED');
    expect(ep.drainOutput()).toEqual([]);
    expect(ep.drainEvents()).toEqual([{ type: 'closed', reason: 'rst_received' }]);
  });
});

describe('handshake options', () => {
  test('MSS for a 1420-byte tunnel MTU is 1380 over IPv4 and 1360 over IPv6', () => {
    expect(mssForMtu(1420, false)).toBe(1380);
    expect(mssForMtu(1420, true)).toBe(1360);
  });

  test('our MSS is announced; the send MSS is the smaller of both sides', () => {
    const { ep, synAck } = synAckFor({ mss: 1460 }, { mss: 1380 });
    expect(synAck.options.mss).toBe(1380);
    expect(ep.negotiated.sendMss).toBe(1380);
    const small = synAckFor({ mss: 1200 }, { mss: 1380 });
    expect(small.ep.negotiated.sendMss).toBe(1200);
  });

  test('without an MSS option the send MSS defaults to 536 (RFC 9293 §3.7.1)', () => {
    expect(synAckFor({}).ep.negotiated.sendMss).toBe(536);
  });

  test('a tiny client MSS is raised to 536, what every IPv4 host takes (RFC 1122 §3.3.2): a byte per packet would cost a packet per byte', () => {
    for (const mss of [1, 13, 100, 535]) expect(synAckFor({ mss }).ep.negotiated.sendMss).toBe(536);
    expect(synAckFor({ mss: 1, timestamp: { value: 1, echo: 0 } }).ep.negotiated.sendMss).toBe(536 - 12);
    expect(synAckFor({ mss: 537 }).ep.negotiated.sendMss).toBe(537);
    // Never above our own.
    expect(synAckFor({ mss: 1 }, { mss: 400 }).ep.negotiated.sendMss).toBe(400);
  });

  test('window scale is answered only if the client offered it (RFC 7323 §2.2)', () => {
    expect(synAckFor({ mss: 1460 }).synAck.options.windowScale).toBeUndefined();
    const { synAck } = synAckFor({ mss: 1460, windowScale: 7 }, { recvBufferBytes: 1 << 20 });
    expect(synAck.options.windowScale).toBe(5); // 1 MiB >> 5 fits in 16 bits
    expect(synAck.window).toBe(65535); // never scaled in a SYN
  });

  test('SACK-permitted is answered only if offered (RFC 2018 §2)', () => {
    expect(synAckFor({}).synAck.options.sackPermitted).toBeUndefined();
    expect(synAckFor({ sackPermitted: true }).synAck.options.sackPermitted).toBe(true);
  });

  test('timestamps echo the client TSval and reduce the payload MSS by 12 (RFC 7323 §3)', () => {
    const { ep, synAck } = synAckFor({ mss: 1460, timestamp: { value: 777, echo: 0 } }, { mss: 1380, tsOffset: 0 });
    expect(synAck.options.timestamp).toEqual({ value: 0, echo: 777 });
    expect(ep.negotiated.sendMss).toBe(1368);
    expect(synAckFor({}).synAck.options.timestamp).toBeUndefined();
  });

  test('all options together', () => {
    const { synAck } = synAckFor({ mss: 1460, windowScale: 8, sackPermitted: true, timestamp: { value: 1, echo: 0 } });
    expect(Object.keys(synAck.options).sort()).toEqual(['mss', 'sackPermitted', 'timestamp', 'windowScale']);
  });

  test('a client window scale above 14 is treated as 14 (RFC 7323 §2.3)', () => {
    expect(synAckFor({ windowScale: 20 }).ep.negotiated.sndWscale).toBe(14);
  });
});

describe('RST for segments of unknown flows (RFC 9293 §3.10.7.1)', () => {
  test('a segment with ACK gets <SEQ=SEG.ACK><CTL=RST>', () => {
    const rst = rstForUnknownSegment(seg({ seq: 10, ack: 99, flags: ACK, payload: bytes(5) }));
    expect(rst).toMatchObject({ seq: 99, flags: RST, srcPort: SERVER_PORT, dstPort: CLIENT_PORT });
  });

  test('a segment without ACK gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN counting one', () => {
    expect(rstForUnknownSegment(seg({ seq: 10, flags: SYN }))).toMatchObject({ seq: 0, ack: 11, flags: RST | ACK });
    expect(rstForUnknownSegment(seg({ seq: 10, flags: FIN, payload: bytes(5) }))).toMatchObject({ ack: 16 });
  });

  test('a RST is never answered', () => {
    expect(rstForUnknownSegment(seg({ seq: 10, flags: RST }))).toBeNull();
  });

  test('the ack wraps at 2^32', () => {
    expect(rstForUnknownSegment(seg({ seq: 0xffff_ffff, flags: SYN }))?.ack).toBe(0);
  });
});
