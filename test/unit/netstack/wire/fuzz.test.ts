// Malformed input must never throw on the packet path (STYLE.md: errors are
// values). 20,000 random, truncated and mutated buffers go through every
// parser; each either returns a WireError or a view whose getters stay
// inside the buffer.
import {
  Icmpv4Repr,
  Icmpv4View,
  Icmpv6Repr,
  Icmpv6View,
  Ipv4Repr,
  Ipv4View,
  Ipv6Repr,
  Ipv6View,
  isWireError,
  parseIpPacket,
  TcpRepr,
  TcpView,
  UdpRepr,
  UdpView,
  verifyUpperLayerChecksum,
} from '../../../../netstack/wire';
import * as F from './fixtures';

/** The captured IPv6 DNS query behind Hop-by-Hop and atomic Fragment headers. */
function v6WithExtensionHeaders(): Buffer {
  const ext = F.hex('2c00 0104 00000000' + '1100 0000 00000001');
  const b = Buffer.concat([F.V6_DNS_QUERY.subarray(0, 40), ext, F.V6_DNS_QUERY.subarray(40)]);
  b.writeUInt16BE(b.length - 40, 4);
  b[6] = 0;
  return b;
}

const SEEDS = [
  v6WithExtensionHeaders(),
  F.V4_ECHO_REQUEST,
  F.V4_DNS_QUERY,
  F.V4_PORT_UNREACHABLE,
  F.V4_TCP_SYN,
  F.V4_TCP_RST,
  F.V6_ECHO_REQUEST,
  F.V6_DNS_QUERY,
  F.V6_PORT_UNREACHABLE,
  F.V6_TCP_SYN,
  F.V6_TCP_RST,
];
const CASES = 20_000;

// Plain checks inside the loop: jest's expect is too slow for 20,000 cases.
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`invariant broken: ${what}`);
}

function within(outer: Buffer, inner: Buffer): boolean {
  return (
    inner.buffer === outer.buffer &&
    inner.byteOffset >= outer.byteOffset &&
    inner.byteOffset + inner.length <= outer.byteOffset + outer.length
  );
}

/** One input per case: random bytes, a prefix of a real packet, or a mutated real packet. */
function makeCase(next: () => number, i: number): Buffer {
  const seed = SEEDS[next() % SEEDS.length];
  switch (i % 4) {
    case 0:
      return F.randomBytes(next, next() % 160);
    case 1:
      return Buffer.from(seed.subarray(0, next() % (seed.length + 1)));
    default: {
      const b = Buffer.from(seed);
      const flips = 1 + (next() % 6);
      for (let k = 0; k < flips; k++) b[next() % b.length] = next() & 0xff;
      // Keep the version nibble half of the time so deeper parsers are reached,
      // and repair the IPv4 header checksum so the upper layers see the mutation.
      if (i % 4 === 2) {
        b[0] = (seed[0] & 0xf0) | (b[0] & 0x0f);
        if (b[0] >> 4 === 4 && b.length >= 20) Ipv4View.unchecked(b).fillChecksum();
      }
      return b;
    }
  }
}

function exerciseUpper(payload: Buffer, src: Buffer, dst: Buffer): void {
  const tcp = TcpView.parse(payload);
  if (!isWireError(tcp)) {
    check(tcp.headerLen >= 20 && tcp.headerLen <= payload.length, 'TCP header inside the segment');
    tcp.verifyChecksum(src, dst);
    const r = TcpRepr.parse(tcp);
    if (!isWireError(r)) {
      const out = Buffer.alloc(r.bufferLen());
      r.emit(TcpView.unchecked(out), src, dst);
      const again = TcpView.parse(out);
      check(!isWireError(again) && !isWireError(TcpRepr.parse(again)), 'an emitted TCP Repr parses again');
    }
  }
  const udp = UdpView.parse(payload);
  if (!isWireError(udp)) {
    check(udp.length >= 8 && udp.length <= payload.length, 'UDP length inside the datagram');
    udp.verifyChecksum(src, dst);
    UdpRepr.parse(udp);
  }
  const i4 = Icmpv4View.parse(payload);
  if (!isWireError(i4)) Icmpv4Repr.parse(i4);
  const i6 = Icmpv6View.parse(payload);
  if (!isWireError(i6)) {
    i6.verifyChecksum(src.length === 16 ? src : Buffer.alloc(16), dst.length === 16 ? dst : Buffer.alloc(16));
    Icmpv6Repr.parse(i6);
  }
}

function exercise(buf: Buffer): void {
  const v4 = Ipv4View.parse(buf);
  if (!isWireError(v4)) {
    check(v4.headerLen >= 20 && v4.headerLen <= v4.totalLength && v4.totalLength <= buf.length, 'IPv4 lengths nested');
    v4.verifyChecksum();
    void [v4.dscp, v4.ecn, v4.fragmentOffset, v4.isFragment, v4.srcKey, v4.dstKey];
    Ipv4Repr.parse(v4);
  }
  const v6 = Ipv6View.parse(buf);
  if (!isWireError(v6)) {
    check(v6.payloadOffset <= 40 + v6.payloadLength && 40 + v6.payloadLength <= buf.length, 'IPv6 lengths nested');
    void [v6.flowLabel, v6.trafficClass, v6.isFragment, v6.srcKey];
    Ipv6Repr.parse(v6);
  }
  const pkt = parseIpPacket(buf);
  if (!isWireError(pkt)) {
    check(within(buf, pkt.payload), 'IP payload inside the packet');
    verifyUpperLayerChecksum(pkt);
    exerciseUpper(pkt.payload, pkt.src, pkt.dst);
  }
  // Every upper-layer parser also sees the raw buffer, as if it were a payload.
  exerciseUpper(buf, F.LOOPBACK4, F.LOOPBACK4);
}

test(`${CASES} random, truncated and mutated buffers never make a parser throw`, () => {
  const next = F.rng(0x5eed);
  const reasons = new Map<string, number>();
  let parsedOk = 0;
  for (let i = 0; i < CASES; i++) {
    const buf = makeCase(next, i);
    try {
      exercise(buf);
    } catch (e) {
      throw new Error(`case ${i} (${buf.toString('hex')}) threw: ${String(e)}`);
    }
    const r = parseIpPacket(buf);
    if (isWireError(r)) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
    else parsedOk++;
  }
  // The corpus reaches both the accept path and many distinct reject reasons.
  expect(parsedOk).toBeGreaterThan(1000);
  expect([...reasons.keys()]).toEqual(
    expect.arrayContaining(['truncated', 'bad_version', 'bad_checksum', 'bad_total_len', 'bad_payload_len']),
  );
});
