import {
  ACK,
  buildIcmpEcho,
  buildIcmpUnreachable,
  buildIpPacket,
  buildTcpPacket,
  buildUdpPacket,
  Icmpv4Repr,
  Icmpv4View,
  Icmpv6Repr,
  Icmpv6View,
  IpAddress,
  IpPacket,
  Ipv4View,
  isWireError,
  parseIpPacket,
  PSH,
  TcpRepr,
  TcpView,
  UdpView,
  verifyUpperLayerChecksum,
} from '../../../../netstack/wire';
import {
  hex,
  parsedOk,
  reasonOf,
  V4_DNS_QUERY,
  V4_DNS_QUERY_FULL_UDP_CHECKSUM,
  V4_ECHO_REPLY,
  V4_ECHO_REQUEST,
  V4_PORT_UNREACHABLE,
  V4_TCP_RST,
  V4_TCP_SYN,
  V6_DNS_QUERY,
  V6_DNS_QUERY_FULL_UDP_CHECKSUM,
  V6_ECHO_REQUEST,
  V6_PORT_UNREACHABLE,
  V6_TCP_SYN,
  withUint16,
} from './fixtures';

const LO4 = IpAddress.parse('127.0.0.1');
const LO6 = IpAddress.parse('::1');

const parsed = (buf: Buffer): IpPacket => parsedOk(parseIpPacket(buf));
/** The captured packet with the UDP checksum at `at` set to `sum`. */
const withUdpChecksum = withUint16;

describe('parseIpPacket: the receive path entry point', () => {
  test.each([
    ['IPv4 ping', V4_ECHO_REQUEST, 4, 1, 24],
    ['IPv4 DNS query', V4_DNS_QUERY, 4, 17, 60],
    ['IPv4 TCP SYN', V4_TCP_SYN, 4, 6, 40],
    ['IPv4 port unreachable', V4_PORT_UNREACHABLE, 4, 1, 88],
    ['IPv6 ping', V6_ECHO_REQUEST, 6, 58, 24],
    ['IPv6 DNS query', V6_DNS_QUERY, 6, 17, 60],
    ['IPv6 TCP SYN', V6_TCP_SYN, 6, 6, 40],
    ['IPv6 port unreachable', V6_PORT_UNREACHABLE, 6, 58, 108],
  ])('summarises a captured %s', (_, buf, family, protocol, payloadLen) => {
    const p = parsed(buf);
    expect([p.family, p.protocol, p.payload.length]).toEqual([family, protocol, payloadLen]);
    expect(p.src.length).toBe(family === 4 ? 4 : 16);
    expect(p.payload.buffer).toBe(buf.buffer);
  });

  test('empty buffer: truncated', () => {
    expect(reasonOf(parseIpPacket(Buffer.alloc(0)))).toBe('truncated');
  });

  test('version nibble neither 4 nor 6: bad_version', () => {
    expect(reasonOf(parseIpPacket(hex('50000014')))).toBe('bad_version');
  });

  test('an IPv4 header with a wrong checksum is dropped (RFC 1122 §3.2.1.2)', () => {
    const b = Buffer.from(V4_ECHO_REQUEST);
    b[8] = 1;
    expect(reasonOf(parseIpPacket(b))).toBe('bad_checksum');
  });

  test('IPv4 fragments are refused: no reassembly, and policy needs the ports', () => {
    const b = Buffer.from(V4_DNS_QUERY);
    const p = parsed(b);
    if (p.family !== 4) throw new Error('fixture');
    p.view.moreFragments = true;
    p.view.fillChecksum();
    expect(reasonOf(parseIpPacket(b))).toBe('fragment');
  });

  test('IPv6 non-atomic fragments are refused; atomic fragments pass (RFC 6946)', () => {
    const udp = V6_DNS_QUERY.subarray(40);
    const mk = (more: boolean): Buffer => {
      const b = Buffer.alloc(40 + 8 + udp.length);
      V6_DNS_QUERY.copy(b, 0, 0, 40);
      b.writeUInt16BE(8 + udp.length, 4);
      b[6] = 44;
      b[40] = 17;
      b.writeUInt16BE(more ? 1 : 0, 42);
      udp.copy(b, 48);
      return b;
    };
    expect(reasonOf(parseIpPacket(mk(true)))).toBe('fragment');
    expect(parsed(mk(false)).protocol).toBe(17);
  });

  test('structural errors from the per-family parsers pass through', () => {
    expect(reasonOf(parseIpPacket(V4_ECHO_REQUEST.subarray(0, 30)))).toBe('bad_total_len');
    expect(reasonOf(parseIpPacket(V6_ECHO_REQUEST.subarray(0, 50)))).toBe('bad_payload_len');
  });
});

describe('verifyUpperLayerChecksum', () => {
  test('accepts kernel-complete checksums: ICMPv4, ICMPv6 and TCP RST', () => {
    for (const b of [V4_ECHO_REQUEST, V4_PORT_UNREACHABLE, V6_ECHO_REQUEST, V6_PORT_UNREACHABLE, V4_TCP_RST]) {
      expect(verifyUpperLayerChecksum(parsed(b))).toBe(true);
    }
  });

  test('accepts UDP with the full checksum over both families', () => {
    expect(verifyUpperLayerChecksum(parsed(withUdpChecksum(V4_DNS_QUERY, 26, V4_DNS_QUERY_FULL_UDP_CHECKSUM)))).toBe(true);
    expect(verifyUpperLayerChecksum(parsed(withUdpChecksum(V6_DNS_QUERY, 46, V6_DNS_QUERY_FULL_UDP_CHECKSUM)))).toBe(true);
  });

  test('refuses an offload-partial checksum (only the pseudo-header sum)', () => {
    expect(verifyUpperLayerChecksum(parsed(V4_TCP_SYN))).toBe(false);
    expect(verifyUpperLayerChecksum(parsed(V4_DNS_QUERY))).toBe(false);
  });

  test('UDP without checksum: accepted over IPv4, refused over IPv6 (RFC 8200 §8.1)', () => {
    expect(verifyUpperLayerChecksum(parsed(withUdpChecksum(V4_DNS_QUERY, 26, 0)))).toBe(true);
    expect(verifyUpperLayerChecksum(parsed(withUdpChecksum(V6_DNS_QUERY, 46, 0)))).toBe(false);
  });

  test('a truncated UDP header fails rather than passing unchecked', () => {
    const b = buildIpPacket({ src: LO4, dst: LO4, protocol: 59, payloadLen: 4, writePayload: () => undefined });
    const ip = Ipv4View.unchecked(b);
    ip.protocol = 17;
    ip.fillChecksum();
    expect(verifyUpperLayerChecksum(parsed(b))).toBe(false);
  });

  test('protocols without a checksum here (e.g. GRE) pass', () => {
    expect(verifyUpperLayerChecksum(parsed(buildIpPacket({ src: LO6, dst: LO6, protocol: 47, payloadLen: 4, writePayload: () => undefined })))).toBe(true);
  });
});

describe('builders', () => {
  test('buildUdpPacket over IPv4 reproduces the captured query up to the IP identification and DF', () => {
    const payload = V4_DNS_QUERY.subarray(28);
    const b = buildUdpPacket(LO4, 0xbf9f, LO4, 5353, payload);
    const expected = withUdpChecksum(V4_DNS_QUERY, 26, V4_DNS_QUERY_FULL_UDP_CHECKSUM);
    expect(b.subarray(20)).toEqual(expected.subarray(20));
    const p = parsed(b);
    expect(p.family === 4 && p.view.dontFragment).toBe(true);
    expect(verifyUpperLayerChecksum(p)).toBe(true);
  });

  test('buildUdpPacket over IPv6 reproduces the captured query up to the flow label', () => {
    const b = buildUdpPacket(LO6, 0xe030, LO6, 5353, V6_DNS_QUERY.subarray(48));
    const expected = withUdpChecksum(V6_DNS_QUERY, 46, V6_DNS_QUERY_FULL_UDP_CHECKSUM);
    expect(b.subarray(4)).toEqual(expected.subarray(4));
  });

  test('buildIcmpEcho builds the kernel reply to the captured IPv4 ping', () => {
    const req = parsed(V4_ECHO_REQUEST);
    const parsedEcho = Icmpv4Repr.parse(Icmpv4View.unchecked(req.payload));
    const echo = isWireError(parsedEcho) ? null : parsedEcho.message;
    if (echo === null || echo.kind !== 'echo_request') throw new Error('fixture');
    const reply = buildIcmpEcho(LO4, LO4, 'echo_reply', echo.identifier, echo.sequence, echo.data);
    expect(reply.subarray(20)).toEqual(V4_ECHO_REPLY.subarray(20));
    const ip = parsed(reply);
    expect(ip.family === 4 && ip.view.verifyChecksum()).toBe(true);
  });

  test('buildIcmpEcho over IPv6 fills the pseudo-header checksum', () => {
    const b = buildIcmpEcho(LO6, LO6, 'echo_request', 0x2487, 1, V6_ECHO_REQUEST.subarray(48));
    expect(b.subarray(40)).toEqual(V6_ECHO_REQUEST.subarray(40));
  });

  test('buildTcpPacket fills IP and TCP checksums and carries the options', () => {
    const repr = new TcpRepr({
      srcPort: 443, dstPort: 50000, seq: 1, ack: 2, flags: PSH | ACK, window: 502, urgent: 0,
      options: { timestamp: { value: 10, echo: 20 } }, payload: Buffer.from('data'),
    });
    for (const [src, dst] of [[LO4, IpAddress.parse('10.8.0.2')], [LO6, IpAddress.parse('fd00::2')]]) {
      const p = parsed(buildTcpPacket(src, dst, repr));
      expect(verifyUpperLayerChecksum(p)).toBe(true);
      const tcp = TcpView.parse(p.payload);
      if (isWireError(tcp)) throw new Error(tcp.reason);
      expect(TcpRepr.parse(tcp)).toEqual(repr);
    }
  });

  test('buildIpPacket refuses mixed families and oversize payloads', () => {
    const w = (): void => undefined;
    expect(() => buildIpPacket({ src: LO4, dst: LO6, protocol: 17, payloadLen: 0, writePayload: w })).toThrow(TypeError);
    expect(() => buildIpPacket({ src: LO4, dst: LO4, protocol: 17, payloadLen: 65516, writePayload: w })).toThrow(RangeError);
    expect(() => buildIpPacket({ src: LO4, dst: LO4, protocol: 6, payloadLen: 19, writePayload: w })).toThrow(/TCP needs at least 20/);
  });

  test('buildIpPacket honours ttl as TTL / Hop Limit', () => {
    const w = (): void => undefined;
    expect(buildIpPacket({ src: LO4, dst: LO4, protocol: 59, ttl: 1, payloadLen: 0, writePayload: w })[8]).toBe(1);
    expect(buildIpPacket({ src: LO6, dst: LO6, protocol: 59, ttl: 255, payloadLen: 0, writePayload: w })[7]).toBe(255);
  });
});

describe('buildIcmpUnreachable (e.g. refusing QUIC so browsers fall back to TCP)', () => {
  test('IPv4 administratively prohibited (type 3 code 13) quotes the offending packet', () => {
    const b = buildIcmpUnreachable(LO4, LO4, 'admin_prohibited', V4_DNS_QUERY);
    const p = parsed(b);
    const r = Icmpv4Repr.parse(Icmpv4View.unchecked(p.payload));
    expect(r).toMatchObject({ message: { kind: 'dst_unreachable', code: 13, quote: V4_DNS_QUERY } });
  });

  test('IPv4 port unreachable equals the kernel one up to TOS and identification', () => {
    const b = buildIcmpUnreachable(LO4, LO4, 'port', V4_DNS_QUERY);
    expect(b.subarray(20)).toEqual(V4_PORT_UNREACHABLE.subarray(20));
  });

  test('IPv6 port unreachable equals the kernel one up to the flow label', () => {
    const b = buildIcmpUnreachable(LO6, LO6, 'port', V6_DNS_QUERY);
    expect(b.subarray(4)).toEqual(V6_PORT_UNREACHABLE.subarray(4));
  });

  test('IPv6 administratively prohibited is type 1 code 1 (RFC 4443 §3.1)', () => {
    const p = parsed(buildIcmpUnreachable(LO6, LO6, 'admin_prohibited', V6_DNS_QUERY));
    expect(Icmpv6Repr.parse(Icmpv6View.unchecked(p.payload))).toMatchObject({ message: { kind: 'dst_unreachable', code: 1 } });
    expect(verifyUpperLayerChecksum(p)).toBe(true);
  });

  test('the quote is cut so the error stays within 576 bytes for IPv4 (RFC 1812 §4.3.2.3)', () => {
    const big = buildUdpPacket(LO4, 1, LO4, 443, Buffer.alloc(1400));
    expect(buildIcmpUnreachable(LO4, LO4, 'port', big).length).toBe(576);
  });

  test('the quote is cut so the error stays within 1280 bytes for IPv6 (RFC 4443 §2.4(c))', () => {
    const big = buildUdpPacket(LO6, 1, LO6, 443, Buffer.alloc(1400));
    const b = buildIcmpUnreachable(LO6, LO6, 'port', big);
    expect(b.length).toBe(1280);
    expect(verifyUpperLayerChecksum(parsed(b))).toBe(true);
  });

  test('the UDP view of a built datagram reads back the ports', () => {
    const u = UdpView.parse(parsed(buildUdpPacket(LO6, 5000, LO6, 53, Buffer.from('q'))).payload);
    expect(isWireError(u) ? u.reason : [u.srcPort, u.dstPort]).toEqual([5000, 53]);
  });
});
