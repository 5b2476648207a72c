// ICMP for IPv4 (RFC 792, RFC 1191 for the next-hop MTU) — view and representation.
import { checksum } from './checksum';
import { WireError, wireError } from './error';
import { ICMP_HEADER_LEN, IcmpHeaderView, echoRest, emitIcmp, icmpBody } from './icmp';

/** The low half of the rest-of-header word (RFC 1191). */
const NEXT_HOP_MTU = 6;
export const ICMPV4_HEADER_LEN = ICMP_HEADER_LEN;
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

export class Icmpv4View extends IcmpHeaderView {
  private constructor(buf: Buffer) {
    super(buf);
  }

  /** `buf` is exactly the ICMP message (the IP payload); the checksum covers all of it. */
  static parse(buf: Buffer): Icmpv4View | WireError {
    if (buf.length < ICMPV4_HEADER_LEN) return wireError('truncated');
    return new Icmpv4View(buf);
  }

  static unchecked(buf: Buffer): Icmpv4View {
    return new Icmpv4View(buf);
  }

  /** RFC 1191: set in Fragmentation Needed (type 3 code 4). */
  get nextHopMtu(): number {
    return this.buf.readUInt16BE(NEXT_HOP_MTU);
  }
  set nextHopMtu(v: number) {
    this.buf.writeUInt16BE(v, NEXT_HOP_MTU);
  }

  verifyChecksum(): boolean {
    return checksum(this.buf, 0, this.buf.length) === 0;
  }

  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = checksum(this.buf, 0, this.buf.length);
  }
}

/** The ICMPv4 messages the stack tells apart. */
export type Icmpv4Message =
  | { kind: 'echo_request' | 'echo_reply'; identifier: number; sequence: number; data: Buffer }
  /** `quote`: the original IP header and the start of its payload (RFC 792). */
  | { kind: 'dst_unreachable'; code: number; nextHopMtu: number; quote: Buffer }
  | { kind: 'time_exceeded'; code: number; quote: Buffer }
  /** Any other message, kept whole so it can be re-emitted unchanged. */
  | { kind: 'other'; type: number; code: number; rest: number; data: Buffer };

function message(view: Icmpv4View): Icmpv4Message {
  const { type, code } = view;
  if ((type === ICMPV4_ECHO_REQUEST || type === ICMPV4_ECHO_REPLY) && code === 0) {
    return {
      kind: type === ICMPV4_ECHO_REQUEST ? 'echo_request' : 'echo_reply',
      identifier: view.identifier,
      sequence: view.sequence,
      data: view.data,
    };
  }
  if (type === ICMPV4_DST_UNREACHABLE) return { kind: 'dst_unreachable', code, nextHopMtu: view.nextHopMtu, quote: view.data };
  if (type === ICMPV4_TIME_EXCEEDED) return { kind: 'time_exceeded', code, quote: view.data };
  return { kind: 'other', type, code, rest: view.rest, data: view.data };
}

function header(m: Icmpv4Message): [type: number, code: number, rest: number] {
  switch (m.kind) {
    case 'echo_request':
    case 'echo_reply':
      return [m.kind === 'echo_request' ? ICMPV4_ECHO_REQUEST : ICMPV4_ECHO_REPLY, 0, echoRest(m.identifier, m.sequence)];
    case 'dst_unreachable':
      // RFC 1191: the MTU in the low 16 bits, the high 16 unused (zero).
      return [ICMPV4_DST_UNREACHABLE, m.code, m.nextHopMtu & 0xffff];
    case 'time_exceeded':
      return [ICMPV4_TIME_EXCEEDED, m.code, 0];
    case 'other':
      return [m.type, m.code, m.rest];
  }
}

/** An ICMPv4 message as a value; `message` says which one (narrow on `message.kind`). */
export class Icmpv4Repr {
  constructor(readonly message: Icmpv4Message) {}

  static parse(view: Icmpv4View): Icmpv4Repr | WireError {
    // The ICMPv4 checksum covers only the message, so it is checked here.
    if (!view.verifyChecksum()) return wireError('bad_checksum');
    return new Icmpv4Repr(message(view));
  }

  bufferLen(): number {
    return ICMPV4_HEADER_LEN + icmpBody(this.message).length;
  }

  /** Writes the message into `view` (exactly bufferLen() bytes) with the checksum filled. */
  emit(view: Icmpv4View): void {
    emitIcmp(view, ...header(this.message), icmpBody(this.message));
    view.fillChecksum();
  }
}
