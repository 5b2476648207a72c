export { NetStack, type NetStackOptions, type LocalUdpHandler, type LocalUdpRequest } from './stack';
export { Counters, type FlowOwner } from './owner';
export { osUdpEgress, type UdpEgressFactory, type UdpEgressSocket, type UdpEgressHandlers } from './egress/udp_socket';
