// TCP header (RFC 9293 §3.1) — view and representation.
// The TcpRepr/TcpOptions shapes and flag constants below are shared with
// netstack/tcp/ (the endpoint state machine): keep them stable.

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

/** Options the stack understands (RFC 9293 MSS, RFC 7323 WS/TS, RFC 2018 SACK). */
export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left edge, right edge) sequence numbers (uint32). */
  sack?: Array<[number, number]>;
  timestamp?: { value: number; echo: number };
}

/** A TCP segment as a plain value: parse from a view, emit into a buffer. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  /** uint32 */
  seq: number;
  /** uint32 (meaningful when flags & ACK) */
  ack: number;
  /** bit mask of FIN|SYN|RST|PSH|ACK|URG|ECE|CWR */
  flags: number;
  /** raw 16-bit window field (unscaled) */
  window: number;
  urgent: number;
  options: TcpOptions;
  payload: Buffer;
}
