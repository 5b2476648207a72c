// Public surface of netstack/wire: zero-copy views and representations of
// IPv4, IPv6, UDP, TCP, ICMPv4 and ICMPv6, the one checksum routine and the
// one IP address type.
export { WireError, wireError, isWireError } from './error';
export type { WireReason } from './error';
export { IpAddress, IpCidr, addressKeyOf, addressLength, formatAddress } from './address';
export type { IpFamily, AddressKey } from './address';
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
export * from './ipv4';
export * from './ipv6';
export * from './udp';
export * from './tcp';
export * from './icmpv4';
export * from './icmpv6';
export * from './packet';
export { PacketArena, ARENA_KEPT_SLABS, ARENA_SLAB_BYTES } from './arena';
