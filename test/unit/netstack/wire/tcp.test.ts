import {
  ACK,
  parseTcpOptions,
  RST,
  SYN,
  TcpRepr,
  TcpView,
} from '../../../../netstack/wire';
import {
  hex,
  LOOPBACK4,
  LOOPBACK6,
  parsedOk,
  reasonOf,
  V4_TCP_RST,
  V4_TCP_SYN,
  V4_TCP_SYN_FULL_CHECKSUM,
  V6_TCP_RST,
  V6_TCP_RST_FULL_CHECKSUM,
  V6_TCP_SYN,
  V6_TCP_SYN_FULL_CHECKSUM,
  withUint16,
} from './fixtures';

const SYN4 = V4_TCP_SYN.subarray(20);
const RST4 = V4_TCP_RST.subarray(20);

const view = (buf: Buffer): TcpView => parsedOk(TcpView.parse(buf));
const repr = (buf: Buffer): TcpRepr => parsedOk(TcpRepr.parse(view(buf)));
function emitted(r: TcpRepr, src?: Buffer, dst?: Buffer): Buffer {
  const out = Buffer.alloc(r.bufferLen());
  r.emit(TcpView.unchecked(out), src, dst);
  return out;
}
/** A bare 20-byte header followed by the given option bytes, zero-padded to 4 (Data Offset set). */
function withOptions(opts: string): Buffer {
  const raw = hex(opts);
  const o = Buffer.concat([raw, Buffer.alloc((4 - (raw.length % 4)) % 4)]);
  const b = Buffer.concat([RST4, o]);
  b[12] = ((20 + o.length) / 4) << 4;
  return b;
}
const withChecksum = (seg: Buffer, sum: number): Buffer => withUint16(seg, 16, sum);

describe('TcpView on a captured Linux SYN', () => {
  const v = view(SYN4);

  test('reads the fixed fields', () => {
    expect(v.srcPort).toBe(37144);
    expect(v.dstPort).toBe(9);
    expect(v.seq).toBe(0x82292d55);
    expect(v.ack).toBe(0);
    expect(v.dataOffset).toBe(10);
    expect(v.headerLen).toBe(40);
    expect(v.flags).toBe(SYN);
    expect(v.window).toBe(65495);
    expect(v.urgent).toBe(0);
    expect(v.options.length).toBe(20);
    expect(v.payload.length).toBe(0);
  });

  test('parses MSS, SACK-permitted, timestamps and window scale', () => {
    expect(repr(SYN4).options).toEqual({
      mss: 65495,
      sackPermitted: true,
      timestamp: { value: 0x31b4675f, echo: 0 },
      windowScale: 10,
    });
  });

  test('emitting the parsed Repr reproduces the SYN byte for byte (Linux option layout)', () => {
    const r = repr(SYN4);
    expect(r.bufferLen()).toBe(40);
    expect(emitted(r, LOOPBACK4, LOOPBACK4)).toEqual(withChecksum(SYN4, V4_TCP_SYN_FULL_CHECKSUM));
  });

  test('IPv6 SYN: fillChecksum writes the independently computed value', () => {
    const seg = Buffer.from(V6_TCP_SYN.subarray(40));
    view(seg).fillChecksum(LOOPBACK6, LOOPBACK6);
    expect(seg.readUInt16BE(16)).toBe(V6_TCP_SYN_FULL_CHECKSUM);
  });
});

describe('TcpView on the kernel RST', () => {
  test('the kernel-computed checksum verifies with the IPv4 pseudo-header', () => {
    expect(view(RST4).verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
  });

  test('the pseudo-header binds the addresses', () => {
    expect(view(RST4).verifyChecksum(hex('7f000002'), LOOPBACK4)).toBe(false);
  });

  test('reads RST|ACK acknowledging the SYN (seq + 1)', () => {
    const r = repr(RST4);
    expect(r.flags).toBe(RST | ACK);
    expect(r.ack).toBe(0x82292d56);
    expect(r.options).toEqual({});
  });

  test('a Repr emits the identical RST, checksum included', () => {
    const r = new TcpRepr({ srcPort: 9, dstPort: 37144, seq: 0, ack: 0x82292d56, flags: RST | ACK, window: 0, urgent: 0, options: {}, payload: Buffer.alloc(0) });
    expect(emitted(r, LOOPBACK4, LOOPBACK4)).toEqual(RST4);
  });

  test('IPv6 RST verifies after filling, and emit at an offset writes only its range', () => {
    const r = repr(V6_TCP_RST.subarray(40));
    const out = Buffer.alloc(4 + r.bufferLen() + 4, 0xee);
    r.emit(TcpView.unchecked(out.subarray(4, 4 + r.bufferLen())), LOOPBACK6, LOOPBACK6);
    expect(out.subarray(4, 24)).toEqual(withChecksum(V6_TCP_RST.subarray(40), V6_TCP_RST_FULL_CHECKSUM));
    expect(out.subarray(0, 4)).toEqual(hex('eeeeeeee'));
    expect(out.subarray(24)).toEqual(hex('eeeeeeee'));
  });
});

describe('TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018)', () => {
  test('NOPs are skipped and EOL ends the list', () => {
    expect(parseTcpOptions(hex('0101 0204 05b4 00 020405dc'))).toEqual({ mss: 1460 });
  });

  test('unknown kinds with a valid length are skipped', () => {
    expect(parseTcpOptions(hex('1e06 00000000 0303 07'))).toEqual({ windowScale: 7 });
  });

  test('a window scale above 14 is used as 14 (RFC 7323 §2.3)', () => {
    expect(parseTcpOptions(hex('030320'))).toEqual({ windowScale: 14 });
  });

  test('SACK blocks are read as [left, right) pairs', () => {
    expect(parseTcpOptions(hex('0101 0512 00000064 000000c8 0000012c 00000190'))).toEqual({
      sack: [
        [100, 200],
        [300, 400],
      ],
    });
  });

  test.each([
    ['option length below 2', '0201'],
    ['option length running past the options area', '0208 05b4'],
    ['kind with no room for its length byte', '01 01 01 02'],
    ['MSS with length 3', '020305'],
    ['window scale with length 4', '03040700'],
    ['SACK-permitted with length 3', '040300'],
    ['SACK with no block', '0502'],
    ['SACK with a partial block', '050b 0000000100000002 00'],
    ['timestamps with length 8', '0808 0000000100000002'],
  ])('malformed: %s -> bad_option', (_, opts) => {
    expect(reasonOf(parseTcpOptions(hex(opts)))).toBe('bad_option');
    expect(reasonOf(TcpRepr.parse(view(withOptions(opts))))).toBe('bad_option');
  });

  test('SACK-permitted without timestamps is emitted as NOP NOP 4 2', () => {
    const r = new TcpRepr({ ...repr(RST4), options: { mss: 1460, sackPermitted: true, windowScale: 7 } });
    const out = emitted(r);
    expect(view(out).options).toEqual(hex('020405b4 01030307 01010402'));
    expect(repr(out).options).toEqual(r.options);
  });

  test('emitted options are 4-byte aligned and round-trip with SACK blocks and timestamps', () => {
    const options = { timestamp: { value: 0xffffffff, echo: 1 }, sack: [[1, 2], [3, 4], [5, 6]] as Array<[number, number]> };
    const r = new TcpRepr({ ...repr(RST4), options, payload: hex('68656c6c6f') });
    const out = emitted(r);
    expect(view(out).headerLen % 4).toBe(0);
    expect(view(out).headerLen).toBe(20 + 12 + 4 + 24);
    expect(repr(out).options).toEqual(options);
    expect(view(out).payload.toString()).toBe('hello');
  });

  test('SACK blocks that do not fit in 40 bytes are dropped, keeping the first (RFC 2018 §3)', () => {
    const sack: Array<[number, number]> = [[1, 2], [3, 4], [5, 6], [7, 8]];
    const r = new TcpRepr({ ...repr(RST4), options: { timestamp: { value: 1, echo: 2 }, sack } });
    const out = emitted(r);
    expect(view(out).headerLen).toBe(60);
    expect(repr(out).options.sack).toEqual(sack.slice(0, 3));
  });
});

describe('TCP rejections', () => {
  test('fewer than 20 bytes: truncated', () => {
    expect(reasonOf(TcpView.parse(RST4.subarray(0, 19)))).toBe('truncated');
  });

  test('Data Offset below 5: bad_header_len', () => {
    const b = Buffer.from(RST4);
    b[12] = 0x40;
    expect(reasonOf(TcpView.parse(b))).toBe('bad_header_len');
  });

  test('Data Offset beyond the segment: truncated', () => {
    expect(reasonOf(TcpView.parse(SYN4.subarray(0, 39)))).toBe('truncated');
  });

  test('port 0 is reserved: bad_port', () => {
    const b = Buffer.from(RST4);
    b.writeUInt16BE(0, 0);
    expect(reasonOf(TcpRepr.parse(view(b)))).toBe('bad_port');
  });

  test('a corrupted segment fails verification', () => {
    const b = Buffer.from(RST4);
    b[13] = SYN;
    expect(view(b).verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(false);
  });

  test('adjustChecksum after rewriting the destination port matches a recompute (NAT)', () => {
    const b = Buffer.from(RST4);
    const oldPort = Buffer.from(b.subarray(2, 4));
    b.writeUInt16BE(40000, 2);
    view(b).adjustChecksum(oldPort, b.subarray(2, 4));
    expect(view(b).verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
  });
});
