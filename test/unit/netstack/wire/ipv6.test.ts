import { IpAddress, Ipv6Repr, Ipv6View } from '../../../../netstack/wire';
import { hex, parsedOk, reasonOf, V6_DNS_QUERY, V6_ECHO_REQUEST } from './fixtures';

const view = (buf: Buffer): Ipv6View => parsedOk(Ipv6View.parse(buf));

const LO = IpAddress.parse('::1');
const UDP_8 = hex('d43114e900080000'); // an empty UDP datagram

/** An IPv6 packet from ::1 to ::1 whose payload is the given extension headers and data. */
function packet(nextHeader: number, ...parts: Buffer[]): Buffer {
  const payload = Buffer.concat(parts);
  const buf = Buffer.alloc(40 + payload.length);
  new Ipv6Repr({ src: LO, dst: LO, nextHeader, payloadLen: payload.length }).emit(Ipv6View.unchecked(buf));
  payload.copy(buf, 40);
  return buf;
}
const hopByHop = (next: number): Buffer => hex(`${next.toString(16).padStart(2, '0')}00 0104 00000000`); // PadN
const destOpts = (next: number): Buffer => hex(`${next.toString(16).padStart(2, '0')}00 0104 00000000`);
function fragmentHeader(next: number, offsetBytes: number, more: boolean, id: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = next;
  b.writeUInt16BE(((offsetBytes / 8) << 3) | (more ? 1 : 0), 2);
  b.writeUInt32BE(id, 4);
  return b;
}

describe('Ipv6View on a captured ping', () => {
  const v = view(V6_ECHO_REQUEST);

  test('reads every fixed field', () => {
    expect(v.version).toBe(6);
    expect(v.trafficClass).toBe(0);
    expect(v.flowLabel).toBe(0x88e22);
    expect(v.payloadLength).toBe(24);
    expect(v.nextHeader).toBe(58);
    expect(v.hopLimit).toBe(64);
    expect(v.src).toEqual(LO.bytes);
    expect(v.dstKey).toBe(LO.key);
  });

  test('without extension headers the upper layer starts at 40', () => {
    expect(v.protocol).toBe(58);
    expect(v.payloadOffset).toBe(40);
    expect(v.payload).toEqual(V6_ECHO_REQUEST.subarray(40));
    expect(v.fragment).toBeNull();
  });

  test('Repr parses and emits the identical fixed header', () => {
    const repr = Ipv6Repr.parse(v);
    const out = Buffer.alloc(repr.bufferLen());
    repr.emit(Ipv6View.unchecked(out));
    expect(out).toEqual(V6_ECHO_REQUEST.subarray(0, 40));
  });

  test('a Repr with traffic class and flow label round-trips', () => {
    const repr = new Ipv6Repr({ src: LO, dst: IpAddress.parse('fd00::2'), nextHeader: 6, payloadLen: 0, hopLimit: 1, trafficClass: 0xb8, flowLabel: 0xfffff });
    const out = Buffer.alloc(40);
    repr.emit(Ipv6View.unchecked(out));
    expect(out.subarray(0, 4)).toEqual(hex('6b8fffff'));
    expect(Ipv6Repr.parse(view(out))).toEqual(repr);
  });
});

describe('Ipv6View.parse rejections', () => {
  test('fewer than 40 bytes: truncated', () => {
    expect(reasonOf(Ipv6View.parse(V6_ECHO_REQUEST.subarray(0, 39)))).toBe('truncated');
  });

  test('version other than 6: bad_version', () => {
    const b = Buffer.from(V6_ECHO_REQUEST);
    b[0] = 0x40;
    expect(reasonOf(Ipv6View.parse(b))).toBe('bad_version');
  });

  test('Payload Length beyond the buffer: bad_payload_len', () => {
    expect(reasonOf(Ipv6View.parse(V6_ECHO_REQUEST.subarray(0, 63)))).toBe('bad_payload_len');
  });

  test('payload is bounded by Payload Length, not by trailing bytes', () => {
    const v = view(Buffer.concat([V6_DNS_QUERY, hex('eeee')]));
    expect(v.payload).toEqual(V6_DNS_QUERY.subarray(40));
  });
});

describe('IPv6 extension header chain (RFC 8200 §4)', () => {
  test('walks Hop-by-Hop, Destination Options and an atomic Fragment header to UDP', () => {
    const v = view(packet(0, hopByHop(60), destOpts(44), fragmentHeader(17, 0, false, 0xdeadbeef), UDP_8));
    expect(v.nextHeader).toBe(0);
    expect(v.protocol).toBe(17);
    expect(v.payloadOffset).toBe(40 + 24);
    expect(v.payload).toEqual(UDP_8);
    expect(v.fragment).toEqual({ offset: 0, moreFragments: false, identification: 0xdeadbeef });
  });

  test('an atomic fragment (offset 0, M = 0) is not a fragment (RFC 6946 §4)', () => {
    expect(view(packet(44, fragmentHeader(17, 0, false, 1), UDP_8)).isFragment).toBe(false);
  });

  test('a first fragment (M = 1) is a fragment and still exposes the upper-layer header', () => {
    const v = view(packet(44, fragmentHeader(17, 0, true, 7), UDP_8));
    expect(v.isFragment).toBe(true);
    expect(v.protocol).toBe(17);
  });

  test('a non-first fragment stops the walk: what follows is not a header', () => {
    const v = view(packet(44, fragmentHeader(6, 1232, false, 7), hex('0000000000000000')));
    expect(v.isFragment).toBe(true);
    expect(v.fragment?.offset).toBe(1232);
    expect(v.protocol).toBe(6);
    expect(v.payloadOffset).toBe(48);
  });

  test('AH length counts 32-bit words minus 2 (RFC 4302 §2.2)', () => {
    const ah = Buffer.alloc(24);
    ah[0] = 17;
    ah[1] = 4; // (4 + 2) * 4 = 24 bytes
    const v = view(packet(51, ah, UDP_8));
    expect(v.protocol).toBe(17);
    expect(v.payloadOffset).toBe(64);
  });

  test('No Next Header (59) ends the chain with an empty upper layer', () => {
    const v = view(packet(59));
    expect(v.protocol).toBe(59);
    expect(v.payload.length).toBe(0);
  });

  test('Hop-by-Hop anywhere but first is refused (RFC 8200 §4.1)', () => {
    expect(reasonOf(Ipv6View.parse(packet(60, destOpts(0), hopByHop(17), UDP_8)))).toBe('bad_ext_header');
  });

  test('two Fragment headers are refused (overlapping-fragment evasion)', () => {
    const b = packet(44, fragmentHeader(44, 0, false, 1), fragmentHeader(17, 0, false, 2), UDP_8);
    expect(reasonOf(Ipv6View.parse(b))).toBe('bad_ext_header');
  });

  test('an extension header running past Payload Length is truncated', () => {
    const b = packet(60, destOpts(17));
    b.writeUInt16BE(6, 4);
    expect(reasonOf(Ipv6View.parse(b.subarray(0, 46)))).toBe('truncated');
  });

  test('a Fragment header cut short is truncated', () => {
    expect(reasonOf(Ipv6View.parse(packet(44, hex('11000000'))))).toBe('truncated');
  });

  test('an extension header with no room for its length byte is truncated', () => {
    expect(reasonOf(Ipv6View.parse(packet(60, hex('11'))))).toBe('truncated');
  });

  test('more than 8 extension headers is refused (chain-length resource attack)', () => {
    const chain = Array.from({ length: 9 }, (_, i) => destOpts(i === 8 ? 17 : 60));
    expect(reasonOf(Ipv6View.parse(packet(60, ...chain, UDP_8)))).toBe('bad_ext_header');
  });

  test('Routing Type 0 with segments left is refused (RFC 5095 §3)', () => {
    const rh0 = hex('1102 00 01 00000000' + '00'.repeat(16)); // type 0, 1 segment left, one address
    expect(reasonOf(Ipv6View.parse(packet(43, rh0, UDP_8)))).toBe('bad_routing_header');
  });

  test('Routing Type 0 with no segments left is walked like any header', () => {
    const rh0 = hex('1102 00 00 00000000' + '00'.repeat(16));
    expect(view(packet(43, rh0, UDP_8)).protocol).toBe(17);
  });
});

describe('Ipv6View setters', () => {
  test('traffic class and flow label setters keep the version and each other', () => {
    const v = Ipv6View.unchecked(Buffer.from(V6_ECHO_REQUEST));
    v.trafficClass = 0xff;
    v.flowLabel = 0x12345;
    expect([v.version, v.trafficClass, v.flowLabel]).toEqual([6, 0xff, 0x12345]);
    v.trafficClass = 0;
    expect(v.flowLabel).toBe(0x12345);
  });
});
