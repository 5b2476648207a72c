export { NetStack, type NetStackOptions, type LocalUdpHandler, type LocalUdpRequest } from './stack';
export { Counters, type FlowOwner } from './owner';
export { BufferBudgets, type BufferLimits, type BudgetRefusalRecord } from './budget';
export { osUdpEgress, type UdpEgressFactory, type UdpEgressSocket, type UdpEgressHandlers } from './egress/udp_socket';
export { TcpFlowTable, type FlowRecord, type TcpFlowHandler, type TcpFlowInfo, type TcpFlowOptions } from './tcp_flows';
export { TcpEndpointStream } from './tcp_stream';
export { connectUpstream, socketEgress, splice, TcpOpenError, type TcpOpenFailure, type TcpUpstream } from './egress/tcp_socket';
