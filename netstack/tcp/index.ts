// Public surface of the userspace TCP endpoint.
export { TcpEndpoint, DEFAULT_RECV_BUFFER_BYTES, DEFAULT_MSL_MS, DELAYED_ACK_MS } from './endpoint';
export type { TcpEndpointOptions, TcpOutput, TcpEvent, TcpState, TcpStats } from './endpoint';
export { rstForUnknownSegment, mssForMtu, segmentLength } from './options';
export type { CongestionControl } from './congestion';
export { NewReno } from './congestion';
export type { Seq } from './seq';
export { asSeq, seqAdd, seqSub, seqLt, seqLeq, seqGt, seqGeq } from './seq';
