// IPv6 header (RFC 8200 §3) and the extension-header chain (§4) up to the
// upper-layer header — view and representation of the fixed header.
import { addressKeyOf, AddressKey, IpAddress } from './address';
import { WireError, wireError } from './error';

const VER_TC_FLOW = 0;
const PAYLOAD_LENGTH = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC_ADDR = 8;
const DST_ADDR = 24;
export const IPV6_HEADER_LEN = 40;

// Extension header numbers (IANA "IPv6 Extension Header Types").
export const IPV6_HOP_BY_HOP = 0;
export const IPV6_ROUTING = 43;
export const IPV6_FRAGMENT = 44;
export const IPV6_AH = 51;
export const IPV6_NO_NEXT_HEADER = 59;
export const IPV6_DEST_OPTIONS = 60;

const FRAGMENT_HEADER_LEN = 8;
// RFC 8200 §4.1 order has at most 7 distinct headers (dest options twice);
// more is an evasion or resource attack, not a real packet.
const MAX_EXT_HEADERS = 8;

export const IPV6_DEFAULT_HOP_LIMIT = 64;

/** Contents of a Fragment header (RFC 8200 §4.5). */
export interface Ipv6Fragment {
  /** In bytes (the field counts 8-octet units). */
  offset: number;
  moreFragments: boolean;
  identification: number;
}

interface Chain {
  protocol: number;
  payloadOffset: number;
  fragment: Ipv6Fragment | null;
}

function walkExtensionHeaders(buf: Buffer, end: number): Chain | WireError {
  let next = buf[NEXT_HEADER];
  let off = IPV6_HEADER_LEN;
  let fragment: Ipv6Fragment | null = null;
  for (let count = 0; ; count++) {
    if (count > MAX_EXT_HEADERS) return wireError('bad_ext_header');
    let len: number;
    switch (next) {
      case IPV6_HOP_BY_HOP:
        // RFC 8200 §4.1: Hop-by-Hop Options only immediately after the IPv6 header.
        if (count !== 0) return wireError('bad_ext_header');
        len = off + 2 <= end ? (buf[off + 1] + 1) * 8 : 0;
        break;
      case IPV6_DEST_OPTIONS:
        len = off + 2 <= end ? (buf[off + 1] + 1) * 8 : 0;
        break;
      case IPV6_ROUTING:
        len = off + 2 <= end ? (buf[off + 1] + 1) * 8 : 0;
        // RFC 5095 §3: Type 0 (source routing) with segments left is refused.
        if (len !== 0 && off + len <= end && buf[off + 2] === 0 && buf[off + 3] !== 0) {
          return wireError('bad_routing_header');
        }
        break;
      case IPV6_AH:
        // RFC 4302 §2.2: Payload Len counts 32-bit words, minus 2.
        len = off + 2 <= end ? (buf[off + 1] + 2) * 4 : 0;
        break;
      case IPV6_FRAGMENT: {
        if (fragment !== null) return wireError('bad_ext_header');
        if (off + FRAGMENT_HEADER_LEN > end) return wireError('truncated');
        const field = buf.readUInt16BE(off + 2);
        fragment = {
          offset: (field >> 3) * 8,
          moreFragments: (field & 1) !== 0,
          identification: buf.readUInt32BE(off + 4),
        };
        next = buf[off];
        off += FRAGMENT_HEADER_LEN;
        // A non-first fragment does not carry the headers that follow.
        if (fragment.offset !== 0) return { protocol: next, payloadOffset: off, fragment };
        continue;
      }
      default:
        return { protocol: next, payloadOffset: off, fragment };
    }
    if (len === 0 || off + len > end) return wireError('truncated');
    next = buf[off];
    off += len;
  }
}

export class Ipv6View {
  private constructor(
    readonly buf: Buffer,
    /** Upper-layer protocol after the extension headers (59 = none). */
    readonly protocol: number,
    /** Offset of the upper-layer header in `buf`. */
    readonly payloadOffset: number,
    /** The Fragment header, if any (an atomic fragment has offset 0 and M = 0). */
    readonly fragment: Ipv6Fragment | null,
  ) {}

  /**
   * Checks the fixed header, that Payload Length fits the buffer, and walks
   * the extension headers (each must fit inside the payload).
   */
  static parse(buf: Buffer): Ipv6View | WireError {
    if (buf.length < IPV6_HEADER_LEN) return wireError('truncated');
    if (buf[VER_TC_FLOW] >> 4 !== 6) return wireError('bad_version');
    const end = IPV6_HEADER_LEN + buf.readUInt16BE(PAYLOAD_LENGTH);
    if (end > buf.length) return wireError('bad_payload_len');
    const chain = walkExtensionHeaders(buf, end);
    if (chain instanceof WireError) return chain;
    return new Ipv6View(buf, chain.protocol, chain.payloadOffset, chain.fragment);
  }

  /** For a buffer this process is filling in (no extension headers); no checks. */
  static unchecked(buf: Buffer): Ipv6View {
    return new Ipv6View(buf, buf[NEXT_HEADER], IPV6_HEADER_LEN, null);
  }

  get version(): number {
    return this.buf[VER_TC_FLOW] >> 4;
  }
  get trafficClass(): number {
    return (this.buf.readUInt16BE(VER_TC_FLOW) >> 4) & 0xff;
  }
  set trafficClass(v: number) {
    const w = this.buf.readUInt16BE(VER_TC_FLOW) & 0xf00f;
    this.buf.writeUInt16BE(w | ((v & 0xff) << 4), VER_TC_FLOW);
  }
  get flowLabel(): number {
    return this.buf.readUInt32BE(VER_TC_FLOW) & 0xfffff;
  }
  set flowLabel(v: number) {
    const w = this.buf.readUInt32BE(VER_TC_FLOW) & 0xfff00000;
    this.buf.writeUInt32BE((w | (v & 0xfffff)) >>> 0, VER_TC_FLOW);
  }
  get payloadLength(): number {
    return this.buf.readUInt16BE(PAYLOAD_LENGTH);
  }
  set payloadLength(v: number) {
    this.buf.writeUInt16BE(v, PAYLOAD_LENGTH);
  }
  /** The fixed header's Next Header (may be an extension header). */
  get nextHeader(): number {
    return this.buf[NEXT_HEADER];
  }
  set nextHeader(v: number) {
    this.buf[NEXT_HEADER] = v;
  }
  get hopLimit(): number {
    return this.buf[HOP_LIMIT];
  }
  set hopLimit(v: number) {
    this.buf[HOP_LIMIT] = v;
  }
  /** 16-byte subarray of the packet (no copy). */
  get src(): Buffer {
    return this.buf.subarray(SRC_ADDR, SRC_ADDR + 16);
  }
  set src(addr: Buffer) {
    addr.copy(this.buf, SRC_ADDR, 0, 16);
  }
  get dst(): Buffer {
    return this.buf.subarray(DST_ADDR, DST_ADDR + 16);
  }
  set dst(addr: Buffer) {
    addr.copy(this.buf, DST_ADDR, 0, 16);
  }
  get srcKey(): AddressKey {
    return Ipv6View.srcKeyOf(this.buf);
  }
  get dstKey(): AddressKey {
    return Ipv6View.dstKeyOf(this.buf);
  }
  /** The source address key of the fixed header at the start of `buf` (IPV6_HEADER_LEN bytes at least), without a view. */
  static srcKeyOf(buf: Buffer): AddressKey {
    return addressKeyOf(buf, SRC_ADDR, 6);
  }
  static dstKeyOf(buf: Buffer): AddressKey {
    return addressKeyOf(buf, DST_ADDR, 6);
  }
  /** A real fragment: RFC 6946 atomic fragments (offset 0, M = 0) are whole packets. */
  get isFragment(): boolean {
    return this.fragment !== null && (this.fragment.offset !== 0 || this.fragment.moreFragments);
  }
  /** Upper-layer bytes, bounded by Payload Length. */
  get payload(): Buffer {
    return this.buf.subarray(this.payloadOffset, IPV6_HEADER_LEN + this.payloadLength);
  }
}

export interface Ipv6ReprInit {
  src: IpAddress;
  dst: IpAddress;
  nextHeader: number;
  payloadLen: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** The fixed IPv6 header as a value; extension headers belong to the payload. */
export class Ipv6Repr {
  readonly src: IpAddress;
  readonly dst: IpAddress;
  readonly nextHeader: number;
  readonly payloadLen: number;
  readonly hopLimit: number;
  readonly trafficClass: number;
  readonly flowLabel: number;

  constructor(init: Ipv6ReprInit) {
    if (init.src.family !== 6 || init.dst.family !== 6) {
      throw new TypeError(`Ipv6Repr needs IPv6 addresses, got ${init.src.toString()} -> ${init.dst.toString()}`);
    }
    this.src = init.src;
    this.dst = init.dst;
    this.nextHeader = init.nextHeader;
    this.payloadLen = init.payloadLen;
    this.hopLimit = init.hopLimit ?? IPV6_DEFAULT_HOP_LIMIT;
    this.trafficClass = init.trafficClass ?? 0;
    this.flowLabel = init.flowLabel ?? 0;
  }

  static parse(view: Ipv6View): Ipv6Repr {
    return new Ipv6Repr({
      src: IpAddress.fromBytes(view.src),
      dst: IpAddress.fromBytes(view.dst),
      nextHeader: view.nextHeader,
      payloadLen: view.payloadLength,
      hopLimit: view.hopLimit,
      trafficClass: view.trafficClass,
      flowLabel: view.flowLabel,
    });
  }

  /** Header length only; the payload follows at this offset. */
  bufferLen(): number {
    return IPV6_HEADER_LEN;
  }

  /** Writes the fixed header into the first 40 bytes of `view`. */
  emit(view: Ipv6View): void {
    view.buf.writeUInt32BE(((6 << 28) | ((this.trafficClass & 0xff) << 20) | (this.flowLabel & 0xfffff)) >>> 0, VER_TC_FLOW);
    view.payloadLength = this.payloadLen;
    view.nextHeader = this.nextHeader;
    view.hopLimit = this.hopLimit;
    view.src = this.src.bytes;
    view.dst = this.dst.bytes;
  }
}
