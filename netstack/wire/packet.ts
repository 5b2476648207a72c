// Whole IP packets: the receive path's one entry point (`parseIpPacket`) and
// builders that emit replies with every checksum filled, for IPv4 and IPv6.
import { IpAddress, type AddressKey } from './address';
import type { PacketArena } from './arena';
import { checksum, pseudoHeaderSum } from './checksum';
import { WireError, wireError } from './error';
import * as icmp4 from './icmpv4';
import * as icmp6 from './icmpv6';
import { Ipv4Repr, Ipv4View, IPV4_HEADER_LEN } from './ipv4';
import { Ipv6Repr, Ipv6View, IPV6_HEADER_LEN } from './ipv6';
import { IP_PROTOCOL_TCP, TcpRepr, TcpReprInit, TcpView } from './tcp';
import { IP_PROTOCOL_UDP, UdpRepr, UdpView } from './udp';

interface IpPacketBase {
  /** Addresses as subarrays of the packet (4 or 16 bytes, no copy). */
  src: Buffer;
  dst: Buffer;
  /** Upper-layer protocol (after IPv6 extension headers). */
  protocol: number;
  /** Upper-layer bytes, bounded by the IP length field. */
  payload: Buffer;
}
export interface Ipv4Packet extends IpPacketBase {
  family: 4;
  view: Ipv4View;
}
export interface Ipv6Packet extends IpPacketBase {
  family: 6;
  view: Ipv6View;
}
export type IpPacket = Ipv4Packet | Ipv6Packet;

/**
 * Validates an IP packet from a tunnel: lengths, the IPv4 header checksum,
 * the IPv6 extension-header chain. Fragments are refused ('fragment'): the
 * concentrator does not reassemble, and a fragment's payload is not an
 * upper-layer header a policy could be applied to. RFC 6946 atomic
 * fragments are whole packets and pass.
 */
export function parseIpPacket(buf: Buffer): IpPacket | WireError {
  if (buf.length === 0) return wireError('truncated');
  const version = buf[0] >> 4;
  if (version === 4) {
    const view = Ipv4View.parse(buf);
    if (view instanceof WireError) return view;
    if (!view.verifyChecksum()) return wireError('bad_checksum');
    if (view.isFragment) return wireError('fragment');
    return { family: 4, view, src: view.src, dst: view.dst, protocol: view.protocol, payload: view.payload };
  }
  if (version === 6) {
    const view = Ipv6View.parse(buf);
    if (view instanceof WireError) return view;
    if (view.isFragment) return wireError('fragment');
    return { family: 6, view, src: view.src, dst: view.dst, protocol: view.protocol, payload: view.payload };
  }
  return wireError('bad_version');
}

/**
 * The key of a packet's source or destination address, read from the fixed
 * IPv4 or IPv6 header without validating the rest (for routing packets the
 * tunnel or the stack already checked; no allocation). null when the version
 * is neither or the fixed header is not all there.
 */
export function ipAddressKey(buf: Buffer, field: 'src' | 'dst'): AddressKey | null {
  const version = buf.length > 0 ? buf[0] >> 4 : 0;
  if (version === 4 && buf.length >= IPV4_HEADER_LEN) return field === 'src' ? Ipv4View.srcKeyOf(buf) : Ipv4View.dstKeyOf(buf);
  if (version === 6 && buf.length >= IPV6_HEADER_LEN) return field === 'src' ? Ipv6View.srcKeyOf(buf) : Ipv6View.dstKeyOf(buf);
  return null;
}

/**
 * Checks the TCP, UDP, ICMP or ICMPv6 checksum of a parsed packet; other
 * protocols have none here and pass. A UDP datagram over IPv4 without a
 * checksum (0) passes; over IPv6 it fails (RFC 8200 §8.1).
 */
export function verifyUpperLayerChecksum(pkt: IpPacket): boolean {
  const { payload, src, dst, protocol } = pkt;
  if (protocol === IP_PROTOCOL_TCP) {
    return checksum(payload, 0, payload.length, pseudoHeaderSum(src, dst, protocol, payload.length)) === 0;
  }
  if (protocol === IP_PROTOCOL_UDP) {
    const udp = UdpView.parse(payload);
    return !(udp instanceof WireError) && udp.verifyChecksum(src, dst);
  }
  if (pkt.family === 4 && protocol === icmp4.IP_PROTOCOL_ICMP) {
    return checksum(payload, 0, payload.length) === 0;
  }
  if (pkt.family === 6 && protocol === icmp6.IP_PROTOCOL_ICMPV6) {
    return checksum(payload, 0, payload.length, pseudoHeaderSum(src, dst, protocol, payload.length)) === 0;
  }
  return true;
}

export interface IpPacketSpec {
  src: IpAddress;
  dst: IpAddress;
  protocol: number;
  /** TTL / Hop Limit; 64 by default. */
  ttl?: number;
  payloadLen: number;
  /** Fills the upper-layer bytes (zeroed beforehand, unless from an arena); its checksum is filled afterwards. */
  writePayload(payload: Buffer): void;
  /**
   * Where the packet's memory comes from: uninitialised, from the arena, for
   * writers that fill every byte of the payload; a fresh zeroed buffer without.
   */
  arena?: PacketArena;
}

function ipHeaderLen(src: IpAddress, dst: IpAddress): number {
  if (src.family !== dst.family) {
    throw new TypeError(`buildIpPacket: address families differ (${src.toString()} -> ${dst.toString()})`);
  }
  return src.family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
}

function upperHeaderMin(protocol: number, family: 4 | 6): [name: string, min: number] | null {
  if (protocol === IP_PROTOCOL_TCP) return ['TCP', 20];
  if (protocol === IP_PROTOCOL_UDP) return ['UDP', 8];
  if (family === 4 && protocol === icmp4.IP_PROTOCOL_ICMP) return ['ICMP', 8];
  if (family === 6 && protocol === icmp6.IP_PROTOCOL_ICMPV6) return ['ICMPv6', 8];
  return null;
}

function fillUpperLayerChecksum(protocol: number, family: 4 | 6, payload: Buffer, src: Buffer, dst: Buffer): void {
  if (protocol === IP_PROTOCOL_TCP) TcpView.unchecked(payload).fillChecksum(src, dst);
  else if (protocol === IP_PROTOCOL_UDP) UdpView.unchecked(payload).fillChecksum(src, dst);
  else if (family === 4 && protocol === icmp4.IP_PROTOCOL_ICMP) icmp4.Icmpv4View.unchecked(payload).fillChecksum();
  else if (family === 6 && protocol === icmp6.IP_PROTOCOL_ICMPV6) {
    icmp6.Icmpv6View.unchecked(payload).fillChecksum(src, dst);
  }
}

/** A fresh packet with the IP header and the upper-layer checksum filled. */
export function buildIpPacket(spec: IpPacketSpec): Buffer {
  const { src, dst, protocol, payloadLen } = spec;
  const hlen = ipHeaderLen(src, dst);
  const max = src.family === 4 ? 0xffff - IPV4_HEADER_LEN : 0xffff;
  if (!Number.isInteger(payloadLen) || payloadLen < 0 || payloadLen > max) {
    throw new RangeError(`buildIpPacket: payload length ${payloadLen} out of range 0..${max}`);
  }
  const header = upperHeaderMin(protocol, src.family);
  if (header !== null && payloadLen < header[1]) {
    throw new RangeError(`buildIpPacket: ${header[0]} needs at least ${header[1]} payload bytes, got ${payloadLen}`);
  }
  // Zeroed unless from an arena, so a writer that leaves gaps cannot leak old heap bytes onto the wire.
  const buf = spec.arena ? spec.arena.take(hlen + payloadLen) : Buffer.alloc(hlen + payloadLen);
  if (src.family === 4) {
    new Ipv4Repr({ src, dst, protocol, payloadLen, ttl: spec.ttl }).emit(Ipv4View.unchecked(buf));
  } else {
    new Ipv6Repr({ src, dst, nextHeader: protocol, payloadLen, hopLimit: spec.ttl }).emit(Ipv6View.unchecked(buf));
  }
  const payload = buf.subarray(hlen);
  spec.writePayload(payload);
  fillUpperLayerChecksum(protocol, src.family, payload, src.bytes, dst.bytes);
  return buf;
}

// The builders below are thin: a Repr of the upper layer, emitted into the
// payload of buildIpPacket, which fills the checksums.

export function buildUdpPacket(src: IpAddress, srcPort: number, dst: IpAddress, dstPort: number, payload: Buffer): Buffer {
  const repr = new UdpRepr({ srcPort, dstPort, payload });
  const writePayload = (b: Buffer): void => repr.emit(UdpView.unchecked(b));
  return buildIpPacket({ src, dst, protocol: IP_PROTOCOL_UDP, payloadLen: repr.bufferLen(), writePayload });
}

/**
 * Takes a TcpRepr (what the endpoint emits), or the plain fields of one.
 * With an arena (the flows' emit path) the packet is carved from it:
 * TcpRepr.emit writes every byte of the segment.
 */
export function buildTcpPacket(src: IpAddress, dst: IpAddress, segment: TcpRepr | TcpReprInit, arena?: PacketArena): Buffer {
  const repr = segment instanceof TcpRepr ? segment : new TcpRepr(segment);
  const writePayload = (b: Buffer): void => repr.emit(TcpView.unchecked(b));
  return buildIpPacket({ src, dst, protocol: IP_PROTOCOL_TCP, payloadLen: repr.bufferLen(), writePayload, arena });
}

export function buildIcmpv4Packet(src: IpAddress, dst: IpAddress, message: icmp4.Icmpv4Message): Buffer {
  const repr = new icmp4.Icmpv4Repr(message);
  const writePayload = (b: Buffer): void => repr.emit(icmp4.Icmpv4View.unchecked(b));
  return buildIpPacket({ src, dst, protocol: icmp4.IP_PROTOCOL_ICMP, payloadLen: repr.bufferLen(), writePayload });
}

export function buildIcmpv6Packet(src: IpAddress, dst: IpAddress, message: icmp6.Icmpv6Message): Buffer {
  const repr = new icmp6.Icmpv6Repr(message);
  const writePayload = (b: Buffer): void => repr.emit(icmp6.Icmpv6View.unchecked(b));
  return buildIpPacket({ src, dst, protocol: icmp6.IP_PROTOCOL_ICMPV6, payloadLen: repr.bufferLen(), writePayload });
}

/** Echo request or reply (ping) in the family of `src`. */
export function buildIcmpEcho(
  src: IpAddress,
  dst: IpAddress,
  kind: 'echo_request' | 'echo_reply',
  identifier: number,
  sequence: number,
  data: Buffer,
): Buffer {
  const repr = { kind, identifier, sequence, data };
  return src.family === 4 ? buildIcmpv4Packet(src, dst, repr) : buildIcmpv6Packet(src, dst, repr);
}

export type UnreachableReason = 'net' | 'host' | 'port' | 'admin_prohibited';

const V4_UNREACH_CODE: Record<UnreachableReason, number> = {
  net: icmp4.ICMPV4_UNREACH_NET,
  host: icmp4.ICMPV4_UNREACH_HOST,
  port: icmp4.ICMPV4_UNREACH_PORT,
  admin_prohibited: icmp4.ICMPV4_UNREACH_ADMIN_PROHIBITED,
};
const V6_UNREACH_CODE: Record<UnreachableReason, number> = {
  net: icmp6.ICMPV6_UNREACH_NO_ROUTE,
  host: icmp6.ICMPV6_UNREACH_ADDRESS,
  port: icmp6.ICMPV6_UNREACH_PORT,
  admin_prohibited: icmp6.ICMPV6_UNREACH_ADMIN_PROHIBITED,
};

// RFC 1812 §4.3.2.3: an ICMPv4 error is at most 576 bytes;
// RFC 4443 §2.4(c): an ICMPv6 error fits the IPv6 minimum MTU of 1280.
const ICMPV4_ERROR_MAX = 576;
const ICMPV6_ERROR_MAX = 1280;

/**
 * Destination Unreachable about `original` (the offending packet), sent
 * from `src` to `dst`, quoting as much of it as the RFC size limit allows.
 * Used e.g. to refuse QUIC so browsers fall back to TCP at once. The caller
 * must not answer ICMP errors or fragments (RFC 1122 §3.2.2, RFC 4443 §2.4(e)).
 */
export function buildIcmpUnreachable(
  src: IpAddress,
  dst: IpAddress,
  reason: UnreachableReason,
  original: Buffer,
): Buffer {
  if (src.family === 4) {
    const room = ICMPV4_ERROR_MAX - IPV4_HEADER_LEN - icmp4.ICMPV4_HEADER_LEN;
    const quote = original.subarray(0, room);
    return buildIcmpv4Packet(src, dst, { kind: 'dst_unreachable', code: V4_UNREACH_CODE[reason], nextHopMtu: 0, quote });
  }
  const room = ICMPV6_ERROR_MAX - IPV6_HEADER_LEN - icmp6.ICMPV6_HEADER_LEN;
  const quote = original.subarray(0, room);
  return buildIcmpv6Packet(src, dst, { kind: 'dst_unreachable', code: V6_UNREACH_CODE[reason], quote });
}

/**
 * RFC 1122 §3.2.2 and RFC 4443 §2.4(e): no destination unreachable about a
 * datagram sent to a multicast (or the limited broadcast) address: the
 * error's source would be a group address.
 */
export function mayReportUnreachable(dst: IpAddress): boolean {
  return dst.family === 4 ? dst.bytes[0] < 224 : dst.bytes[0] !== 0xff;
}
