// ICMPv6 (RFC 4443) — view and representation. The checksum includes the
// IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
import { pseudoHeaderChecksum } from './checksum';
import { WireError, wireError } from './error';
import { ICMP_HEADER_LEN, IcmpHeaderView, echoRest, emitIcmp, icmpBody } from './icmp';

export const ICMPV6_HEADER_LEN = ICMP_HEADER_LEN;
export const IP_PROTOCOL_ICMPV6 = 58;

export const ICMPV6_DST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const ICMPV6_UNREACH_NO_ROUTE = 0;
export const ICMPV6_UNREACH_ADMIN_PROHIBITED = 1;
export const ICMPV6_UNREACH_ADDRESS = 3;
export const ICMPV6_UNREACH_PORT = 4;

export class Icmpv6View extends IcmpHeaderView {
  private constructor(buf: Buffer) {
    super(buf);
  }

  /** `buf` is exactly the ICMPv6 message (the upper-layer payload). */
  static parse(buf: Buffer): Icmpv6View | WireError {
    if (buf.length < ICMPV6_HEADER_LEN) return wireError('truncated');
    return new Icmpv6View(buf);
  }

  static unchecked(buf: Buffer): Icmpv6View {
    return new Icmpv6View(buf);
  }

  /** The rest-of-header word of Packet Too Big (RFC 4443 §3.2). */
  get mtu(): number {
    return this.rest;
  }
  /** The rest-of-header word of Parameter Problem (RFC 4443 §3.4). */
  get pointer(): number {
    return this.rest;
  }

  /** `src`/`dst`: the 16-byte IPv6 addresses of the carrying packet. */
  verifyChecksum(src: Buffer, dst: Buffer): boolean {
    return pseudoHeaderChecksum(this.buf, this.buf.length, src, dst, IP_PROTOCOL_ICMPV6) === 0;
  }

  fillChecksum(src: Buffer, dst: Buffer): void {
    this.checksum = 0;
    this.checksum = pseudoHeaderChecksum(this.buf, this.buf.length, src, dst, IP_PROTOCOL_ICMPV6);
  }
}

/** The ICMPv6 messages the stack tells apart. */
export type Icmpv6Message =
  | { kind: 'echo_request' | 'echo_reply'; identifier: number; sequence: number; data: Buffer }
  /** `quote`: as much of the invoking packet as fits in the minimum MTU (RFC 4443 §2.4(c)). */
  | { kind: 'dst_unreachable'; code: number; quote: Buffer }
  | { kind: 'packet_too_big'; mtu: number; quote: Buffer }
  | { kind: 'time_exceeded'; code: number; quote: Buffer }
  | { kind: 'param_problem'; code: number; pointer: number; quote: Buffer }
  /** Any other message (e.g. NDP), kept whole so it can be re-emitted unchanged. */
  | { kind: 'other'; type: number; code: number; rest: number; data: Buffer };

function message(view: Icmpv6View): Icmpv6Message {
  const { type, code } = view;
  if ((type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) && code === 0) {
    return {
      kind: type === ICMPV6_ECHO_REQUEST ? 'echo_request' : 'echo_reply',
      identifier: view.identifier,
      sequence: view.sequence,
      data: view.data,
    };
  }
  switch (type) {
    case ICMPV6_DST_UNREACHABLE:
      return { kind: 'dst_unreachable', code, quote: view.data };
    case ICMPV6_PACKET_TOO_BIG:
      if (code === 0) return { kind: 'packet_too_big', mtu: view.mtu, quote: view.data };
      break;
    case ICMPV6_TIME_EXCEEDED:
      return { kind: 'time_exceeded', code, quote: view.data };
    case ICMPV6_PARAM_PROBLEM:
      return { kind: 'param_problem', code, pointer: view.pointer, quote: view.data };
  }
  return { kind: 'other', type, code, rest: view.rest, data: view.data };
}

function header(m: Icmpv6Message): [type: number, code: number, rest: number] {
  switch (m.kind) {
    case 'echo_request':
    case 'echo_reply': {
      const type = m.kind === 'echo_request' ? ICMPV6_ECHO_REQUEST : ICMPV6_ECHO_REPLY;
      return [type, 0, echoRest(m.identifier, m.sequence)];
    }
    case 'dst_unreachable':
      return [ICMPV6_DST_UNREACHABLE, m.code, 0];
    case 'packet_too_big':
      return [ICMPV6_PACKET_TOO_BIG, 0, m.mtu];
    case 'time_exceeded':
      return [ICMPV6_TIME_EXCEEDED, m.code, 0];
    case 'param_problem':
      return [ICMPV6_PARAM_PROBLEM, m.code, m.pointer];
    case 'other':
      return [m.type, m.code, m.rest];
  }
}

/** An ICMPv6 message as a value; `message` says which one (narrow on `message.kind`). */
export class Icmpv6Repr {
  constructor(readonly message: Icmpv6Message) {}

  /**
   * Structure only: the checksum covers the pseudo-header, so the caller
   * verifies it with `view.verifyChecksum(src, dst)`.
   */
  static parse(view: Icmpv6View): Icmpv6Repr {
    return new Icmpv6Repr(message(view));
  }

  bufferLen(): number {
    return ICMPV6_HEADER_LEN + icmpBody(this.message).length;
  }

  /**
   * Writes the message into `view` (exactly bufferLen() bytes); with the IPv6
   * addresses of the carrying packet, fills the checksum too.
   */
  emit(view: Icmpv6View, src?: Buffer, dst?: Buffer): void {
    emitIcmp(view, ...header(this.message), icmpBody(this.message));
    if (src !== undefined && dst !== undefined) view.fillChecksum(src, dst);
  }
}
