// Handshake option negotiation (RFC 9293 §3.7.1 MSS, RFC 7323 window scale and
// timestamps, RFC 2018 SACK-permitted) and the RST for segments that match no
// flow (RFC 9293 §3.10.7.1).
import { ACK, FIN, RST, SYN, TcpOptions, TcpRepr } from '../wire/tcp';

/** RFC 9293 §3.7.1: the default send MSS when the SYN carries no MSS option (IPv4). */
export const DEFAULT_IPV4_MSS = 536;
/** RFC 7323 §2.3: shift counts above 14 are treated as 14. */
export const MAX_WINDOW_SCALE = 14;
/** RFC 7323 §3.2: kind 8 length 10, padded to 12 with two NOPs. */
export const TIMESTAMP_OPTION_BYTES = 12;
/** 16-bit window field */
export const MAX_WINDOW_FIELD = 0xffff;

/** MSS for a tunnel MTU: MTU minus the IP and TCP fixed headers. */
export function mssForMtu(mtu: number, ipv6: boolean): number {
  return mtu - (ipv6 ? 40 : 20) - 20;
}

/** Smallest shift so that `bufferBytes` fits in the 16-bit window field. */
export function windowScaleFor(bufferBytes: number): number {
  let shift = 0;
  while (shift < MAX_WINDOW_SCALE && bufferBytes >> shift > MAX_WINDOW_FIELD) shift++;
  return shift;
}

export interface Negotiated {
  /** payload bytes per segment we send (client MSS ∧ ours, minus TS option) */
  sendMss: number;
  /** payload bytes per full-sized segment we expect to receive */
  recvMss: number;
  /** shift applied to the client's window field, or 0 */
  sndWscale: number;
  /** shift applied to our window field, or 0 */
  rcvWscale: number;
  wsOk: boolean;
  sackOk: boolean;
  tsOk: boolean;
}

/**
 * Floor on the client's MSS. Every IPv4 host takes 576-byte datagrams (RFC 1122
 * §3.3.2; IPv6 ones 1280), so segments of 536 reach any client. Without it a
 * SYN with MSS 1 made every byte sent a packet of its own: a thousand times
 * the CPU per byte, and a segment log as long as the bytes in flight (Linux
 * added tcp_min_snd_mss for the same reason, CVE-2019-11479).
 */
const MIN_CLIENT_MSS = DEFAULT_IPV4_MSS;

/** Options agreed from the client's SYN: each only if the client offered it. */
export function negotiate(syn: TcpOptions, ourMss: number, recvBufferBytes: number): Negotiated {
  const wsOk = syn.windowScale !== undefined;
  const tsOk = syn.timestamp !== undefined;
  const clientMss = Math.max(syn.mss !== undefined && syn.mss > 0 ? syn.mss : DEFAULT_IPV4_MSS, MIN_CLIENT_MSS);
  const tsCost = tsOk ? TIMESTAMP_OPTION_BYTES : 0;
  return {
    sendMss: Math.max(1, Math.min(clientMss, ourMss) - tsCost),
    recvMss: Math.max(1, ourMss - tsCost),
    sndWscale: wsOk ? Math.min(syn.windowScale ?? 0, MAX_WINDOW_SCALE) : 0,
    rcvWscale: wsOk ? windowScaleFor(recvBufferBytes) : 0,
    wsOk,
    sackOk: syn.sackPermitted === true,
    tsOk,
  };
}

/** Sequence space a segment occupies: payload plus one each for SYN and FIN. */
export function segmentLength(seg: TcpRepr): number {
  return seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
}

/**
 * The reset answering a segment that belongs to no connection (RFC 9293
 * §3.10.7.1), or null when the segment is itself a RST (never answer a RST).
 */
export function rstForUnknownSegment(seg: TcpRepr): TcpRepr | null {
  if (seg.flags & RST) return null;
  const base = { srcPort: seg.dstPort, dstPort: seg.srcPort, window: 0, urgent: 0, options: {}, payload: Buffer.alloc(0) };
  if (seg.flags & ACK) {
    // <SEQ=SEG.ACK><CTL=RST>
    return new TcpRepr({ ...base, seq: seg.ack >>> 0, ack: 0, flags: RST });
  }
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
  return new TcpRepr({ ...base, seq: 0, ack: (seg.seq + segmentLength(seg)) >>> 0, flags: RST | ACK });
}
