import { isWireError, UdpRepr, UdpView } from '../../../../netstack/wire';
import {
  hex,
  LOOPBACK4,
  LOOPBACK6,
  naiveChecksum,
  parsedOk,
  reasonOf,
  V4_DNS_QUERY,
  V4_DNS_QUERY_FULL_UDP_CHECKSUM,
  V6_DNS_QUERY,
  V6_DNS_QUERY_FULL_UDP_CHECKSUM,
  withUint16,
} from './fixtures';

const V4_UDP = V4_DNS_QUERY.subarray(20);
const V6_UDP = V6_DNS_QUERY.subarray(40);

const view = (buf: Buffer): UdpView => parsedOk(UdpView.parse(buf));
/** The captured datagram with its partial (offload) checksum replaced by the full one. */
const completed = (udp: Buffer, sum: number): Buffer => withUint16(udp, 6, sum);

describe('UdpView on a captured DNS query', () => {
  test('reads ports, length and a payload that starts with the DNS header', () => {
    const v = view(V4_UDP);
    expect(v.srcPort).toBe(0xbf9f);
    expect(v.dstPort).toBe(5353);
    expect(v.length).toBe(60);
    expect(v.payload.length).toBe(52);
    expect(v.payload.subarray(12, 25).toString('latin1')).toBe('\x07example\x03com\x00');
  });

  test('fillChecksum over IPv4 writes the independently computed value', () => {
    const v = view(Buffer.from(V4_UDP));
    v.fillChecksum(LOOPBACK4, LOOPBACK4);
    expect(v.checksum).toBe(V4_DNS_QUERY_FULL_UDP_CHECKSUM);
    expect(v.verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
  });

  test('fillChecksum over IPv6 uses the RFC 8200 §8.1 pseudo-header', () => {
    const v = view(Buffer.from(V6_UDP));
    v.fillChecksum(LOOPBACK6, LOOPBACK6);
    expect(v.checksum).toBe(V6_DNS_QUERY_FULL_UDP_CHECKSUM);
    expect(v.verifyChecksum(LOOPBACK6, LOOPBACK6)).toBe(true);
  });

  test('a corrupted payload byte fails verification', () => {
    const b = completed(V4_UDP, V4_DNS_QUERY_FULL_UDP_CHECKSUM);
    b[20] ^= 1;
    expect(view(b).verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(false);
  });

  test('the pseudo-header binds the addresses: another source fails verification', () => {
    const v = view(completed(V4_UDP, V4_DNS_QUERY_FULL_UDP_CHECKSUM));
    expect(v.verifyChecksum(hex('7f000002'), LOOPBACK4)).toBe(false);
  });

  test('checksum 0 over IPv4 means "none" and is accepted (RFC 768)', () => {
    expect(view(completed(V4_UDP, 0)).verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
  });

  test('checksum 0 over IPv6 is invalid (RFC 8200 §8.1)', () => {
    expect(view(completed(V6_UDP, 0)).verifyChecksum(LOOPBACK6, LOOPBACK6)).toBe(false);
  });

  test('a computed checksum of 0 is transmitted as 0xffff (RFC 768)', () => {
    // Choose the last payload word so that the checksum comes out as zero.
    const b = Buffer.alloc(12);
    b.writeUInt16BE(1000, 0);
    b.writeUInt16BE(2000, 2);
    b.writeUInt16BE(12, 4);
    const v = view(b);
    v.fillChecksum(LOOPBACK4, LOOPBACK4);
    b.writeUInt16BE(v.checksum, 10);
    v.fillChecksum(LOOPBACK4, LOOPBACK4);
    expect(v.checksum).toBe(0xffff);
    expect(v.verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
  });

  test('adjustChecksum after rewriting the source address matches a recompute (NAT)', () => {
    const b = completed(V4_UDP, V4_DNS_QUERY_FULL_UDP_CHECKSUM);
    const newSrc = hex('0a080002');
    view(b).adjustChecksum(LOOPBACK4, newSrc);
    expect(view(b).verifyChecksum(newSrc, LOOPBACK4)).toBe(true);
  });

  test('adjustChecksum leaves an absent IPv4 checksum absent', () => {
    const b = completed(V4_UDP, 0);
    view(b).adjustChecksum(LOOPBACK4, hex('0a080002'));
    expect(view(b).checksum).toBe(0);
  });
});

describe('UdpRepr', () => {
  test('parses the captured query and emits the same bytes (with the full checksum)', () => {
    const repr = UdpRepr.parse(view(V4_UDP));
    if (isWireError(repr)) throw new Error(repr.reason);
    expect(repr.bufferLen()).toBe(60);
    const out = Buffer.alloc(repr.bufferLen());
    repr.emit(UdpView.unchecked(out), LOOPBACK4, LOOPBACK4);
    expect(out).toEqual(completed(V4_UDP, V4_DNS_QUERY_FULL_UDP_CHECKSUM));
  });

  test('without addresses emit leaves the checksum 0', () => {
    const repr = new UdpRepr({ srcPort: 53, dstPort: 40000, payload: hex('abcd') });
    const out = Buffer.alloc(repr.bufferLen());
    repr.emit(UdpView.unchecked(out));
    expect(out).toEqual(hex('0035 9c40 000a 0000 abcd'));
  });

  test('destination port 0 is reserved and refused', () => {
    const b = Buffer.from(V4_UDP);
    b.writeUInt16BE(0, 2);
    expect(reasonOf(UdpRepr.parse(view(b)))).toBe('bad_port');
  });
});

describe('UdpView.parse rejections', () => {
  test('fewer than 8 bytes: truncated', () => {
    expect(reasonOf(UdpView.parse(V4_UDP.subarray(0, 7)))).toBe('truncated');
  });

  test('Length below the header size: bad_length', () => {
    const b = Buffer.from(V4_UDP);
    b.writeUInt16BE(7, 4);
    expect(reasonOf(UdpView.parse(b))).toBe('bad_length');
  });

  test('Length beyond the buffer: bad_length', () => {
    expect(reasonOf(UdpView.parse(V4_UDP.subarray(0, 59)))).toBe('bad_length');
  });

  test('payload is bounded by Length; the checksum covers only Length bytes', () => {
    const b = Buffer.concat([completed(V4_UDP, V4_DNS_QUERY_FULL_UDP_CHECKSUM), hex('ffff')]);
    const v = view(b);
    expect(v.payload.length).toBe(52);
    expect(v.verifyChecksum(LOOPBACK4, LOOPBACK4)).toBe(true);
    expect(naiveChecksum(b)).not.toBe(0);
  });
});
