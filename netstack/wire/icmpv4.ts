// ICMP for IPv4 (RFC 792, RFC 1191 for the next-hop MTU) — view and representation.
import { checksum } from './checksum';
import { WireError, wireError } from './error';

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const REST = 4;
const IDENTIFIER = 4;
const SEQUENCE = 6;
const NEXT_HOP_MTU = 6;
export const ICMPV4_HEADER_LEN = 8;
export const IP_PROTOCOL_ICMP = 1;

export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_DST_UNREACHABLE = 3;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV4_TIME_EXCEEDED = 11;

/** Destination Unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const ICMPV4_UNREACH_NET = 0;
export const ICMPV4_UNREACH_HOST = 1;
export const ICMPV4_UNREACH_PROTOCOL = 2;
export const ICMPV4_UNREACH_PORT = 3;
export const ICMPV4_UNREACH_FRAG_NEEDED = 4;
export const ICMPV4_UNREACH_ADMIN_PROHIBITED = 13;

export class Icmpv4View {
  private constructor(readonly buf: Buffer) {}

  /** `buf` is exactly the ICMP message (the IP payload); the checksum covers all of it. */
  static parse(buf: Buffer): Icmpv4View | WireError {
    if (buf.length < ICMPV4_HEADER_LEN) return wireError('truncated');
    return new Icmpv4View(buf);
  }

  static unchecked(buf: Buffer): Icmpv4View {
    return new Icmpv4View(buf);
  }

  get type(): number {
    return this.buf[TYPE];
  }
  set type(v: number) {
    this.buf[TYPE] = v;
  }
  get code(): number {
    return this.buf[CODE];
  }
  set code(v: number) {
    this.buf[CODE] = v;
  }
  get checksum(): number {
    return this.buf.readUInt16BE(CHECKSUM);
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, CHECKSUM);
  }
  /** The 32-bit "rest of header" word, whose meaning depends on the type. */
  get rest(): number {
    return this.buf.readUInt32BE(REST);
  }
  set rest(v: number) {
    this.buf.writeUInt32BE(v >>> 0, REST);
  }
  get identifier(): number {
    return this.buf.readUInt16BE(IDENTIFIER);
  }
  set identifier(v: number) {
    this.buf.writeUInt16BE(v, IDENTIFIER);
  }
  get sequence(): number {
    return this.buf.readUInt16BE(SEQUENCE);
  }
  set sequence(v: number) {
    this.buf.writeUInt16BE(v, SEQUENCE);
  }
  /** RFC 1191: set in Fragmentation Needed (type 3 code 4). */
  get nextHopMtu(): number {
    return this.buf.readUInt16BE(NEXT_HOP_MTU);
  }
  set nextHopMtu(v: number) {
    this.buf.writeUInt16BE(v, NEXT_HOP_MTU);
  }
  /** Echo data, or the quoted original datagram of an error message. */
  get data(): Buffer {
    return this.buf.subarray(ICMPV4_HEADER_LEN);
  }

  verifyChecksum(): boolean {
    return checksum(this.buf, 0, this.buf.length) === 0;
  }

  fillChecksum(): void {
    this.buf.writeUInt16BE(0, CHECKSUM);
    this.buf.writeUInt16BE(checksum(this.buf, 0, this.buf.length), CHECKSUM);
  }
}

export type Icmpv4Repr =
  | { kind: 'echo_request' | 'echo_reply'; identifier: number; sequence: number; data: Buffer }
  /** `quote`: the original IP header and the start of its payload (RFC 792). */
  | { kind: 'dst_unreachable'; code: number; nextHopMtu: number; quote: Buffer }
  | { kind: 'time_exceeded'; code: number; quote: Buffer }
  /** Any other message, kept whole so it can be re-emitted unchanged. */
  | { kind: 'other'; type: number; code: number; rest: number; data: Buffer };

function parse(view: Icmpv4View): Icmpv4Repr | WireError {
  // The ICMPv4 checksum covers only the message, so it is checked here.
  if (!view.verifyChecksum()) return wireError('bad_checksum');
  const { type, code } = view;
  if ((type === ICMPV4_ECHO_REQUEST || type === ICMPV4_ECHO_REPLY) && code === 0) {
    return {
      kind: type === ICMPV4_ECHO_REQUEST ? 'echo_request' : 'echo_reply',
      identifier: view.identifier,
      sequence: view.sequence,
      data: view.data,
    };
  }
  if (type === ICMPV4_DST_UNREACHABLE) {
    return { kind: 'dst_unreachable', code, nextHopMtu: view.nextHopMtu, quote: view.data };
  }
  if (type === ICMPV4_TIME_EXCEEDED) return { kind: 'time_exceeded', code, quote: view.data };
  return { kind: 'other', type, code, rest: view.rest, data: view.data };
}

function body(repr: Icmpv4Repr): Buffer {
  switch (repr.kind) {
    case 'echo_request':
    case 'echo_reply':
    case 'other':
      return repr.data;
    default:
      return repr.quote;
  }
}

function bufferLen(repr: Icmpv4Repr): number {
  return ICMPV4_HEADER_LEN + body(repr).length;
}

/** Writes the message into buf[0, bufferLen(repr)) with the checksum filled. */
function emit(repr: Icmpv4Repr, buf: Buffer): void {
  const v = Icmpv4View.unchecked(buf.subarray(0, bufferLen(repr)));
  v.rest = 0;
  switch (repr.kind) {
    case 'echo_request':
    case 'echo_reply':
      v.type = repr.kind === 'echo_request' ? ICMPV4_ECHO_REQUEST : ICMPV4_ECHO_REPLY;
      v.code = 0;
      v.identifier = repr.identifier;
      v.sequence = repr.sequence;
      break;
    case 'dst_unreachable':
      v.type = ICMPV4_DST_UNREACHABLE;
      v.code = repr.code;
      v.nextHopMtu = repr.nextHopMtu;
      break;
    case 'time_exceeded':
      v.type = ICMPV4_TIME_EXCEEDED;
      v.code = repr.code;
      break;
    case 'other':
      v.type = repr.type;
      v.code = repr.code;
      v.rest = repr.rest;
      break;
  }
  body(repr).copy(v.buf, ICMPV4_HEADER_LEN);
  v.fillChecksum();
}

/** `Icmpv4Repr.parse(view)`, `.bufferLen(repr)`, `.emit(repr, buf)`. */
export const Icmpv4Repr = { parse, bufferLen, emit };
