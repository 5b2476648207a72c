// Public surface of the userspace TCP endpoint.
export { TcpEndpoint } from './endpoint';
export type { TcpEvent, TcpState, TcpStats } from './endpoint';
export { DEFAULT_RECV_BUFFER_BYTES, DEFAULT_MSL_MS, DELAYED_ACK_MS, CHALLENGE_ACK_LIMIT } from './config';
export type { TcpEndpointOptions, TcpOutput } from './config';
export { DEFAULT_SEND_BUFFER_BYTES, SendChunkPool } from './send_buffer';
export { rstForUnknownSegment, mssForMtu, segmentLength } from './options';
export type { CongestionControl } from './congestion';
export { NewReno } from './congestion';
export { Cubic } from './cubic';
export type { Seq } from './seq';
export { asSeq, seqAdd, seqSub, seqLt, seqLeq, seqGt, seqGeq } from './seq';
