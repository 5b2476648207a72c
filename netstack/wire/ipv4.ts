// IPv4 header (RFC 791 §3.1) — view and representation.
import { addressKeyOf, AddressKey, IpAddress } from './address';
import { checksum } from './checksum';
import { WireError, wireError } from './error';

const VER_IHL = 0;
const DSCP_ECN = 1;
const TOTAL_LENGTH = 2;
const IDENTIFICATION = 4;
const FLAGS_FRAG_OFFSET = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC_ADDR = 12;
const DST_ADDR = 16;
export const IPV4_HEADER_LEN = 20;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

export const IPV4_DEFAULT_TTL = 64;

export class Ipv4View {
  private constructor(readonly buf: Buffer) {}

  /**
   * Checks lengths only (not the checksum): enough header, version 4,
   * IHL ≥ 5 and total length within [header, buffer]. Bytes after the
   * total length (link padding) are ignored.
   */
  static parse(buf: Buffer): Ipv4View | WireError {
    if (buf.length < IPV4_HEADER_LEN) return wireError('truncated');
    const verIhl = buf[VER_IHL];
    if (verIhl >> 4 !== 4) return wireError('bad_version');
    const headerLen = (verIhl & 0x0f) * 4;
    if (headerLen < IPV4_HEADER_LEN) return wireError('bad_header_len');
    if (headerLen > buf.length) return wireError('truncated');
    const total = buf.readUInt16BE(TOTAL_LENGTH);
    if (total < headerLen || total > buf.length) return wireError('bad_total_len');
    return new Ipv4View(buf);
  }

  /** For a buffer this process is filling in; no checks. */
  static unchecked(buf: Buffer): Ipv4View {
    return new Ipv4View(buf);
  }

  get version(): number {
    return this.buf[VER_IHL] >> 4;
  }
  /** Header length in 32-bit words (the IHL field). */
  get ihl(): number {
    return this.buf[VER_IHL] & 0x0f;
  }
  /** Also writes version 4: the two share a byte and only IPv4 has an IHL. */
  set ihl(words: number) {
    this.buf[VER_IHL] = 0x40 | (words & 0x0f);
  }
  get headerLen(): number {
    return (this.buf[VER_IHL] & 0x0f) * 4;
  }
  get dscp(): number {
    return this.buf[DSCP_ECN] >> 2;
  }
  set dscp(v: number) {
    this.buf[DSCP_ECN] = ((v & 0x3f) << 2) | (this.buf[DSCP_ECN] & 0x03);
  }
  get ecn(): number {
    return this.buf[DSCP_ECN] & 0x03;
  }
  set ecn(v: number) {
    this.buf[DSCP_ECN] = (this.buf[DSCP_ECN] & 0xfc) | (v & 0x03);
  }
  get totalLength(): number {
    return this.buf.readUInt16BE(TOTAL_LENGTH);
  }
  set totalLength(v: number) {
    this.buf.writeUInt16BE(v, TOTAL_LENGTH);
  }
  get identification(): number {
    return this.buf.readUInt16BE(IDENTIFICATION);
  }
  set identification(v: number) {
    this.buf.writeUInt16BE(v, IDENTIFICATION);
  }
  get dontFragment(): boolean {
    return (this.buf.readUInt16BE(FLAGS_FRAG_OFFSET) & FLAG_DF) !== 0;
  }
  set dontFragment(on: boolean) {
    this.setFlag(FLAG_DF, on);
  }
  get moreFragments(): boolean {
    return (this.buf.readUInt16BE(FLAGS_FRAG_OFFSET) & FLAG_MF) !== 0;
  }
  set moreFragments(on: boolean) {
    this.setFlag(FLAG_MF, on);
  }
  /** Fragment offset in bytes (the field counts 8-octet units). */
  get fragmentOffset(): number {
    return (this.buf.readUInt16BE(FLAGS_FRAG_OFFSET) & FRAG_OFFSET_MASK) * 8;
  }
  set fragmentOffset(bytes: number) {
    const flags = this.buf.readUInt16BE(FLAGS_FRAG_OFFSET) & ~FRAG_OFFSET_MASK;
    this.buf.writeUInt16BE(flags | ((bytes >> 3) & FRAG_OFFSET_MASK), FLAGS_FRAG_OFFSET);
  }
  /** MF set or a non-zero offset: the payload is not a whole upper-layer packet. */
  get isFragment(): boolean {
    return (this.buf.readUInt16BE(FLAGS_FRAG_OFFSET) & (FLAG_MF | FRAG_OFFSET_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buf[TTL];
  }
  set ttl(v: number) {
    this.buf[TTL] = v;
  }
  get protocol(): number {
    return this.buf[PROTOCOL];
  }
  set protocol(v: number) {
    this.buf[PROTOCOL] = v;
  }
  get checksum(): number {
    return this.buf.readUInt16BE(CHECKSUM);
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, CHECKSUM);
  }
  /** 4-byte subarray of the packet (no copy). */
  get src(): Buffer {
    return this.buf.subarray(SRC_ADDR, SRC_ADDR + 4);
  }
  set src(addr: Buffer) {
    addr.copy(this.buf, SRC_ADDR, 0, 4);
  }
  get dst(): Buffer {
    return this.buf.subarray(DST_ADDR, DST_ADDR + 4);
  }
  set dst(addr: Buffer) {
    addr.copy(this.buf, DST_ADDR, 0, 4);
  }
  get srcKey(): AddressKey {
    return Ipv4View.srcKeyOf(this.buf);
  }
  get dstKey(): AddressKey {
    return Ipv4View.dstKeyOf(this.buf);
  }
  /** The source address key of the header at the start of `buf` (IPV4_HEADER_LEN bytes at least), without a view. */
  static srcKeyOf(buf: Buffer): AddressKey {
    return addressKeyOf(buf, SRC_ADDR, 4);
  }
  static dstKeyOf(buf: Buffer): AddressKey {
    return addressKeyOf(buf, DST_ADDR, 4);
  }
  /** Options bytes (between the fixed header and IHL·4); carried, never interpreted. */
  get options(): Buffer {
    return this.buf.subarray(IPV4_HEADER_LEN, this.headerLen);
  }
  /** Bounded by Total Length, not by the buffer (which may carry padding). */
  get payload(): Buffer {
    return this.buf.subarray(this.headerLen, this.totalLength);
  }

  verifyChecksum(): boolean {
    return checksum(this.buf, 0, this.headerLen) === 0;
  }

  fillChecksum(): void {
    this.buf.writeUInt16BE(0, CHECKSUM);
    this.buf.writeUInt16BE(checksum(this.buf, 0, this.headerLen), CHECKSUM);
  }

  private setFlag(flag: number, on: boolean): void {
    const v = this.buf.readUInt16BE(FLAGS_FRAG_OFFSET);
    this.buf.writeUInt16BE(on ? v | flag : v & ~flag, FLAGS_FRAG_OFFSET);
  }
}

export interface Ipv4ReprInit {
  src: IpAddress;
  dst: IpAddress;
  protocol: number;
  payloadLen: number;
  ttl?: number;
  dscp?: number;
  ecn?: number;
  identification?: number;
  /** Defaults to true: replies we originate rely on path MTU discovery (RFC 1191). */
  dontFragment?: boolean;
}

/** An unfragmented IPv4 header as a value; options are not represented. */
export class Ipv4Repr {
  readonly src: IpAddress;
  readonly dst: IpAddress;
  readonly protocol: number;
  readonly payloadLen: number;
  readonly ttl: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly identification: number;
  readonly dontFragment: boolean;

  constructor(init: Ipv4ReprInit) {
    if (init.src.family !== 4 || init.dst.family !== 4) {
      throw new TypeError(`Ipv4Repr needs IPv4 addresses, got ${init.src.toString()} -> ${init.dst.toString()}`);
    }
    this.src = init.src;
    this.dst = init.dst;
    this.protocol = init.protocol;
    this.payloadLen = init.payloadLen;
    this.ttl = init.ttl ?? IPV4_DEFAULT_TTL;
    this.dscp = init.dscp ?? 0;
    this.ecn = init.ecn ?? 0;
    this.identification = init.identification ?? 0;
    this.dontFragment = init.dontFragment ?? true;
  }

  /**
   * Verifies the header checksum (it covers the header alone) and refuses
   * fragments, which this representation cannot describe.
   */
  static parse(view: Ipv4View): Ipv4Repr | WireError {
    if (!view.verifyChecksum()) return wireError('bad_checksum');
    if (view.isFragment) return wireError('fragment');
    return new Ipv4Repr({
      src: IpAddress.fromBytes(view.src),
      dst: IpAddress.fromBytes(view.dst),
      protocol: view.protocol,
      payloadLen: view.totalLength - view.headerLen,
      ttl: view.ttl,
      dscp: view.dscp,
      ecn: view.ecn,
      identification: view.identification,
      dontFragment: view.dontFragment,
    });
  }

  /** Header length only; the payload follows at this offset. */
  bufferLen(): number {
    return IPV4_HEADER_LEN;
  }

  /** Writes the header (checksum filled) into the first 20 bytes of `view`. */
  emit(view: Ipv4View): void {
    view.ihl = 5;
    view.buf[DSCP_ECN] = ((this.dscp & 0x3f) << 2) | (this.ecn & 0x03);
    view.totalLength = IPV4_HEADER_LEN + this.payloadLen;
    view.identification = this.identification;
    view.buf.writeUInt16BE(this.dontFragment ? FLAG_DF : 0, FLAGS_FRAG_OFFSET);
    view.ttl = this.ttl;
    view.protocol = this.protocol;
    view.src = this.src.bytes;
    view.dst = this.dst.bytes;
    view.fillChecksum();
  }
}
