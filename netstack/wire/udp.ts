// UDP header (RFC 768) — view and representation.
import { pseudoHeaderChecksum, updateChecksumBytes } from './checksum';
import { WireError, wireError } from './error';

const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;
export const UDP_HEADER_LEN = 8;
export const IP_PROTOCOL_UDP = 17;

export class UdpView {
  private constructor(readonly buf: Buffer) {}

  /** Length checks only: header present, 8 ≤ Length ≤ buffer. */
  static parse(buf: Buffer): UdpView | WireError {
    if (buf.length < UDP_HEADER_LEN) return wireError('truncated');
    const len = buf.readUInt16BE(LENGTH);
    if (len < UDP_HEADER_LEN || len > buf.length) return wireError('bad_length');
    return new UdpView(buf);
  }

  static unchecked(buf: Buffer): UdpView {
    return new UdpView(buf);
  }

  get srcPort(): number {
    return this.buf.readUInt16BE(SRC_PORT);
  }
  set srcPort(v: number) {
    this.buf.writeUInt16BE(v, SRC_PORT);
  }
  get dstPort(): number {
    return this.buf.readUInt16BE(DST_PORT);
  }
  set dstPort(v: number) {
    this.buf.writeUInt16BE(v, DST_PORT);
  }
  get length(): number {
    return this.buf.readUInt16BE(LENGTH);
  }
  set length(v: number) {
    this.buf.writeUInt16BE(v, LENGTH);
  }
  get checksum(): number {
    return this.buf.readUInt16BE(CHECKSUM);
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, CHECKSUM);
  }
  get payload(): Buffer {
    return this.buf.subarray(UDP_HEADER_LEN, this.length);
  }

  /**
   * `src`/`dst` are the IP addresses (4 or 16 bytes). Over IPv4 a zero
   * checksum means "not computed" (RFC 768); over IPv6 it is invalid
   * (RFC 8200 §8.1).
   */
  verifyChecksum(src: Buffer, dst: Buffer): boolean {
    if (this.checksum === 0) return src.length === 4;
    return pseudoHeaderChecksum(this.buf, this.length, src, dst, IP_PROTOCOL_UDP) === 0;
  }

  fillChecksum(src: Buffer, dst: Buffer): void {
    this.checksum = 0;
    const sum = pseudoHeaderChecksum(this.buf, this.length, src, dst, IP_PROTOCOL_UDP);
    // RFC 768: a computed zero is sent as all ones, zero meaning "none".
    this.checksum = sum === 0 ? 0xffff : sum;
  }

  /**
   * RFC 1624 update after rewriting an address or port from `oldBytes` to
   * `newBytes`; an absent IPv4 checksum (0) stays absent.
   */
  adjustChecksum(oldBytes: Buffer, newBytes: Buffer): void {
    const hc = this.checksum;
    if (hc === 0) return;
    const next = updateChecksumBytes(hc, oldBytes, newBytes);
    this.buf.writeUInt16BE(next === 0 ? 0xffff : next, CHECKSUM);
  }
}

export interface UdpReprInit {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export class UdpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  /** On parse, a subarray of the datagram (no copy). */
  readonly payload: Buffer;

  constructor(init: UdpReprInit) {
    this.srcPort = init.srcPort;
    this.dstPort = init.dstPort;
    this.payload = init.payload;
  }

  /**
   * Structure only: the checksum covers the IP pseudo-header, so the caller
   * verifies it with `view.verifyChecksum(src, dst)`. Port 0 as destination
   * is reserved (RFC 768) and refused.
   */
  static parse(view: UdpView): UdpRepr | WireError {
    if (view.dstPort === 0) return wireError('bad_port');
    return new UdpRepr({ srcPort: view.srcPort, dstPort: view.dstPort, payload: view.payload });
  }

  bufferLen(): number {
    return UDP_HEADER_LEN + this.payload.length;
  }

  /** Writes header and payload into `view`; with the IP addresses, fills the checksum too. */
  emit(view: UdpView, src?: Buffer, dst?: Buffer): void {
    view.srcPort = this.srcPort;
    view.dstPort = this.dstPort;
    view.length = this.bufferLen();
    view.checksum = 0;
    this.payload.copy(view.buf, UDP_HEADER_LEN);
    if (src !== undefined && dst !== undefined) view.fillChecksum(src, dst);
  }
}
