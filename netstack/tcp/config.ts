// Options and constants of a TCP endpoint, named as in the RFCs.
import { TcpRepr } from '../wire/tcp';
import { CongestionControl } from './congestion';
import type { SendChunkPool } from './send_buffer';

export interface TcpEndpointOptions {
  /** our MSS (see mssForMtu) */
  mss: number;
  /** receive buffer, and so the largest window we advertise (default 1 MiB) */
  recvBufferBytes?: number;
  /** send buffer (default 4 MiB) */
  sendBufferBytes?: number;
  /** where the send buffer takes its chunks (default: a pool of its own; a table shares one among its flows) */
  sendChunks?: SendChunkPool;
  /** maximum segment lifetime in ms; TIME-WAIT lasts 2*MSL (default 30 s) */
  msl?: number;
  /** close with RST after this long without traffic; 0 = never (default) */
  idleTimeoutMs?: number;
  /** first keepalive probe after this long without segments; 0 = off (default) */
  keepaliveMs?: number;
  /** interval between unanswered keepalive probes (default min(keepaliveMs, 75 s)) */
  keepaliveIntervalMs?: number;
  /** our initial sequence number (default random) */
  isn?: number;
  /** RFC 6298 initial RTO (default 1000 ms) */
  initialRtoMs?: number;
  /** offset added to `now` for TSval (RFC 7323 §7.1; default random) */
  tsOffset?: number;
  /** congestion control factory (default NewReno; see README on CUBIC) */
  congestion?: (smss: number) => CongestionControl;
  /** bytes the flow's owner may still buffer (buffer budgets; unlimited by default) */
  room?: () => number;
}

export interface TcpOutput {
  segments: TcpRepr[];
}

export const DEFAULT_RECV_BUFFER_BYTES = 1024 * 1024;
/** RFC 9293 §3.4.2 suggests 2 minutes; 30 s like Linux's TIME-WAIT of 60 s. */
export const DEFAULT_MSL_MS = 30_000;
/** Delayed ACK timeout (RFC 9293 §3.8.6.3: under 0.5 s; Linux uses 40 ms). */
export const DELAYED_ACK_MS = 40;
/** Retransmissions of one segment, or unanswered window probes, before giving up (Linux tcp_retries2). */
export const MAX_RETRANSMITS = 15;
/** SYN-ACK retransmissions before giving up (Linux tcp_synack_retries). */
export const SYNACK_RETRIES = 5;
/** RFC 5961 §7 challenge ACK rate limit, per flow. */
export const CHALLENGE_ACK_LIMIT = 10;
