// Public surface of netstack/wire: zero-copy views and representations of
// IPv4, IPv6, UDP, TCP, ICMPv4 and ICMPv6, the one checksum routine and the
// one IP address type; and the two ways of holding bytes from elsewhere (bytes.ts).
export { WireError, wireError, isWireError } from './error';
export type { WireReason } from './error';
export { IpAddress, IpCidr, addressKeyOf, addressLength, fixedIpv4Form, formatAddress } from './address';
export type { IpFamily, AddressKey, FixedIpv4Form } from './address';
export {
  checksum,
  onesComplementSum,
  pseudoHeaderChecksum,
  pseudoHeaderSum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  updateChecksumWord,
  updateChecksumBytes,
  patchChecksum,
} from './checksum';
export {
  IPV4_HEADER_LEN,
  IPV4_DEFAULT_TTL,
  Ipv4View,
  Ipv4Repr,
} from './ipv4';
export type { Ipv4ReprInit } from './ipv4';
export {
  IPV6_HEADER_LEN,
  IPV6_HOP_BY_HOP,
  IPV6_ROUTING,
  IPV6_FRAGMENT,
  IPV6_AH,
  IPV6_NO_NEXT_HEADER,
  IPV6_DEST_OPTIONS,
  IPV6_DEFAULT_HOP_LIMIT,
  Ipv6View,
  Ipv6Repr,
} from './ipv6';
export type { Ipv6Fragment, Ipv6ReprInit } from './ipv6';
export {
  UDP_HEADER_LEN,
  IP_PROTOCOL_UDP,
  UdpView,
  UdpRepr,
} from './udp';
export type { UdpReprInit } from './udp';
export {
  FIN,
  SYN,
  RST,
  PSH,
  ACK,
  URG,
  ECE,
  CWR,
  TCP_HEADER_LEN,
  TCP_MAX_OPTIONS_LEN,
  IP_PROTOCOL_TCP,
  TcpView,
  parseTcpOptions,
  TcpRepr,
} from './tcp';
export type { TcpOptions, TcpReprInit } from './tcp';
export {
  ICMPV4_HEADER_LEN,
  IP_PROTOCOL_ICMP,
  ICMPV4_ECHO_REPLY,
  ICMPV4_DST_UNREACHABLE,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_TIME_EXCEEDED,
  ICMPV4_UNREACH_NET,
  ICMPV4_UNREACH_HOST,
  ICMPV4_UNREACH_PROTOCOL,
  ICMPV4_UNREACH_PORT,
  ICMPV4_UNREACH_FRAG_NEEDED,
  ICMPV4_UNREACH_ADMIN_PROHIBITED,
  Icmpv4View,
  Icmpv4Repr,
} from './icmpv4';
export type { Icmpv4Message } from './icmpv4';
export {
  ICMPV6_HEADER_LEN,
  IP_PROTOCOL_ICMPV6,
  ICMPV6_DST_UNREACHABLE,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_TIME_EXCEEDED,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
  ICMPV6_UNREACH_NO_ROUTE,
  ICMPV6_UNREACH_ADMIN_PROHIBITED,
  ICMPV6_UNREACH_ADDRESS,
  ICMPV6_UNREACH_PORT,
  Icmpv6View,
  Icmpv6Repr,
} from './icmpv6';
export type { Icmpv6Message } from './icmpv6';
export {
  parseIpPacket,
  ipAddressKey,
  verifyUpperLayerChecksum,
  buildIpPacket,
  buildUdpPacket,
  buildTcpPacket,
  buildIcmpv4Packet,
  buildIcmpv6Packet,
  buildIcmpEcho,
  buildIcmpUnreachable,
  mayReportUnreachable,
} from './packet';
export type { Ipv4Packet, Ipv6Packet, IpPacket, IpPacketSpec, UnreachableReason } from './packet';
export { PacketArena, ARENA_KEPT_SLABS, ARENA_SLAB_BYTES } from './arena';
export { ownCopy, Pieces } from './bytes';
