export { NetStack, type NetStackOptions, type LocalUdpHandler, type LocalUdpRequest, type EgressDenial } from './stack';
export { Counters, type FlowOwner } from './owner';
export { osUdpEgress, type UdpEgressFactory, type UdpEgressSocket, type UdpEgressHandlers } from './egress/udp_socket';
export { TcpFlowTable, type FlowRecord, type TcpFlowHandler, type TcpFlowInfo, type TcpFlowOptions } from './tcp_flows';
export { TcpEndpointStream } from './tcp_stream';
export { connectUpstream, socketEgress, splice, TcpOpenError, type TcpOpenFailure, type TcpUpstream } from './egress/tcp_socket';
export { EgressGuard, EGRESS_REFUSALS, describeVerdict, type EgressForm, type EgressGuardOptions, type EgressListener, type EgressRefusal, type EgressVerdict } from './egress/guard';
export { hostInterfaceCidrs, watchHostAddresses, type HostAddressWatcher, type InterfaceReader } from './egress/host_addresses';
