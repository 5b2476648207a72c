// The WireGuard UDP socket: the thin I/O edge of the concentrator, with
// batched I/O through our addon (udp_native) or node:dgram.
export { UdpEdge, type UdpEdgeOptions } from './udp_edge';
export {
  BatchUdpSocket, formatEntryAddress, loadUdpNative, MAX_DATAGRAM, RecvBatch,
  type BatchUdpCounters, type BatchUdpOptions,
} from './udp_native';
