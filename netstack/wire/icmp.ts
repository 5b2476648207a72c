// The header ICMPv4 and ICMPv6 share: type, code, checksum, then a 32-bit
// word whose meaning depends on the type (RFC 792; RFC 4443 §2.1 keeps the
// layout), and the Echo identifier and sequence in that word (RFC 792,
// RFC 4443 §4.1). Icmpv4View and Icmpv6View add the per-version fields and
// their different checksums (ICMPv6 covers the IPv6 pseudo-header).

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const REST = 4;
const IDENTIFIER = 4;
const SEQUENCE = 6;
export const ICMP_HEADER_LEN = 8;

export abstract class IcmpHeaderView {
  protected constructor(readonly buf: Buffer) {}

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
  /** Echo data, or the quoted original packet of an error message. */
  get data(): Buffer {
    return this.buf.subarray(ICMP_HEADER_LEN);
  }
}

/** What follows the header of a message: echo and unknown messages carry `data`, errors a `quote`. */
export function icmpBody(message: { data: Buffer } | { quote: Buffer }): Buffer {
  return 'data' in message ? message.data : message.quote;
}

/** Writes header and body into buf[0, ICMP_HEADER_LEN + body.length) with the checksum field zeroed. */
export function emitIcmp(view: IcmpHeaderView, type: number, code: number, rest: number, body: Buffer): void {
  view.type = type;
  view.code = code;
  view.checksum = 0;
  view.rest = rest;
  body.copy(view.buf, ICMP_HEADER_LEN);
}

/** The Echo rest-of-header word: identifier in the high half, sequence in the low (RFC 792, RFC 4443 §4.1). */
export function echoRest(identifier: number, sequence: number): number {
  return (identifier & 0xffff) * 0x10000 + (sequence & 0xffff);
}
