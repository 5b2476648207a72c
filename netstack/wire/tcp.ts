// TCP header (RFC 9293 §3.1) — view and representation.
// TcpRepr, TcpOptions and the flag constants below are shared with
// netstack/tcp/ (the endpoint state machine): keep them stable.
import { pseudoHeaderChecksum, updateChecksumBytes } from './checksum';
import { WireError, wireError } from './error';

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

/** The fields of a TCP segment, as the state machine writes them down (see TcpRepr). */
export interface TcpReprInit {
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

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ_NUM = 4;
const ACK_NUM = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;
export const TCP_HEADER_LEN = 20;
/** Data Offset is 4 bits of 32-bit words: 60 bytes of header, 40 of options. */
export const TCP_MAX_OPTIONS_LEN = 40;
export const IP_PROTOCOL_TCP = 6;

// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WINDOW_SCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;
/** RFC 7323 §2.3: a larger shift is treated as 14. */
const MAX_WINDOW_SCALE = 14;

export class TcpView {
  private constructor(readonly buf: Buffer) {}

  /**
   * `buf` must be exactly the segment (the IP payload): TCP has no length
   * field, so the payload and the checksum run to the end of `buf`.
   */
  static parse(buf: Buffer): TcpView | WireError {
    if (buf.length < TCP_HEADER_LEN) return wireError('truncated');
    const headerLen = (buf[DATA_OFFSET] >> 4) * 4;
    if (headerLen < TCP_HEADER_LEN) return wireError('bad_header_len');
    if (headerLen > buf.length) return wireError('truncated');
    return new TcpView(buf);
  }

  static unchecked(buf: Buffer): TcpView {
    return new TcpView(buf);
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
  get seq(): number {
    return this.buf.readUInt32BE(SEQ_NUM);
  }
  set seq(v: number) {
    this.buf.writeUInt32BE(v >>> 0, SEQ_NUM);
  }
  get ack(): number {
    return this.buf.readUInt32BE(ACK_NUM);
  }
  set ack(v: number) {
    this.buf.writeUInt32BE(v >>> 0, ACK_NUM);
  }
  /** Header length in 32-bit words (the Data Offset field). */
  get dataOffset(): number {
    return this.buf[DATA_OFFSET] >> 4;
  }
  set dataOffset(words: number) {
    this.buf[DATA_OFFSET] = ((words & 0x0f) << 4) | (this.buf[DATA_OFFSET] & 0x0f);
  }
  get headerLen(): number {
    return (this.buf[DATA_OFFSET] >> 4) * 4;
  }
  /** FIN|SYN|RST|PSH|ACK|URG|ECE|CWR bit mask. */
  get flags(): number {
    return this.buf[FLAGS];
  }
  set flags(v: number) {
    this.buf[FLAGS] = v;
  }
  get window(): number {
    return this.buf.readUInt16BE(WINDOW);
  }
  set window(v: number) {
    this.buf.writeUInt16BE(v, WINDOW);
  }
  get checksum(): number {
    return this.buf.readUInt16BE(CHECKSUM);
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, CHECKSUM);
  }
  get urgent(): number {
    return this.buf.readUInt16BE(URGENT);
  }
  set urgent(v: number) {
    this.buf.writeUInt16BE(v, URGENT);
  }
  /** Raw option bytes (subarray). */
  get options(): Buffer {
    return this.buf.subarray(TCP_HEADER_LEN, this.headerLen);
  }
  get payload(): Buffer {
    return this.buf.subarray(this.headerLen);
  }

  /** `src`/`dst` are the IP addresses (4 or 16 bytes) for the pseudo-header. */
  verifyChecksum(src: Buffer, dst: Buffer): boolean {
    return pseudoHeaderChecksum(this.buf, this.buf.length, src, dst, IP_PROTOCOL_TCP) === 0;
  }

  fillChecksum(src: Buffer, dst: Buffer): void {
    this.checksum = 0;
    this.checksum = pseudoHeaderChecksum(this.buf, this.buf.length, src, dst, IP_PROTOCOL_TCP);
  }

  /** RFC 1624 update after rewriting an address or port. */
  adjustChecksum(oldBytes: Buffer, newBytes: Buffer): void {
    this.buf.writeUInt16BE(updateChecksumBytes(this.checksum, oldBytes, newBytes), CHECKSUM);
  }
}

/** Parses option bytes; unknown kinds are skipped, malformed lengths refused. */
export function parseTcpOptions(b: Buffer): TcpOptions | WireError {
  const opts: TcpOptions = {};
  for (let i = 0; i < b.length; ) {
    const kind = b[i];
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) return wireError('bad_option');
    const len = b[i + 1];
    if (len < 2 || i + len > b.length) return wireError('bad_option');
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return wireError('bad_option');
        opts.mss = b.readUInt16BE(i + 2);
        break;
      case OPT_WINDOW_SCALE:
        if (len !== 3) return wireError('bad_option');
        opts.windowScale = Math.min(b[i + 2], MAX_WINDOW_SCALE);
        break;
      case OPT_SACK_PERMITTED:
        if (len !== 2) return wireError('bad_option');
        opts.sackPermitted = true;
        break;
      case OPT_SACK: {
        if (len < 10 || (len - 2) % 8 !== 0) return wireError('bad_option');
        const blocks: Array<[number, number]> = [];
        for (let j = i + 2; j < i + len; j += 8) blocks.push([b.readUInt32BE(j), b.readUInt32BE(j + 4)]);
        opts.sack = blocks;
        break;
      }
      case OPT_TIMESTAMP:
        if (len !== 10) return wireError('bad_option');
        opts.timestamp = { value: b.readUInt32BE(i + 2), echo: b.readUInt32BE(i + 6) };
        break;
      default:
        break;
    }
    i += len;
  }
  return opts;
}

// Emitted layout is Linux's: every option 4-byte aligned with NOPs, SACK-
// permitted packed before the timestamps when both are present (RFC 7323
// Appendix A), so the total is a multiple of 4 with no trailing padding.
const MSS_LEN = 4;
const WS_LEN = 4;
const SACK_PERMITTED_LEN = 4;
const TIMESTAMP_LEN = 12;
const SACK_BASE_LEN = 4;
const SACK_BLOCK_LEN = 8;

/** SACK blocks that fit beside the other options (RFC 2018 §3: 3 with timestamps). */
function sackBlocksThatFit(o: TcpOptions): number {
  if (o.sack === undefined || o.sack.length === 0) return 0;
  const room = TCP_MAX_OPTIONS_LEN - fixedOptionsLen(o) - SACK_BASE_LEN;
  return Math.max(0, Math.min(o.sack.length, Math.floor(room / SACK_BLOCK_LEN)));
}

function fixedOptionsLen(o: TcpOptions): number {
  return (
    (o.mss !== undefined ? MSS_LEN : 0) +
    (o.windowScale !== undefined ? WS_LEN : 0) +
    (o.sackPermitted && o.timestamp === undefined ? SACK_PERMITTED_LEN : 0) +
    (o.timestamp !== undefined ? TIMESTAMP_LEN : 0)
  );
}

function optionsLen(o: TcpOptions): number {
  const blocks = sackBlocksThatFit(o);
  return fixedOptionsLen(o) + (blocks > 0 ? SACK_BASE_LEN + blocks * SACK_BLOCK_LEN : 0);
}

function emitOptions(o: TcpOptions, b: Buffer, at: number): number {
  let i = at;
  if (o.mss !== undefined) {
    b[i] = OPT_MSS;
    b[i + 1] = 4;
    b.writeUInt16BE(o.mss, i + 2);
    i += MSS_LEN;
  }
  if (o.timestamp !== undefined) {
    b[i] = o.sackPermitted ? OPT_SACK_PERMITTED : OPT_NOP;
    b[i + 1] = o.sackPermitted ? 2 : OPT_NOP;
    b[i + 2] = OPT_TIMESTAMP;
    b[i + 3] = 10;
    b.writeUInt32BE(o.timestamp.value >>> 0, i + 4);
    b.writeUInt32BE(o.timestamp.echo >>> 0, i + 8);
    i += TIMESTAMP_LEN;
  }
  if (o.windowScale !== undefined) {
    b[i] = OPT_NOP;
    b[i + 1] = OPT_WINDOW_SCALE;
    b[i + 2] = 3;
    b[i + 3] = Math.min(o.windowScale, MAX_WINDOW_SCALE);
    i += WS_LEN;
  }
  if (o.sackPermitted && o.timestamp === undefined) {
    b[i] = OPT_NOP;
    b[i + 1] = OPT_NOP;
    b[i + 2] = OPT_SACK_PERMITTED;
    b[i + 3] = 2;
    i += SACK_PERMITTED_LEN;
  }
  const blocks = sackBlocksThatFit(o);
  if (blocks > 0 && o.sack !== undefined) {
    b[i] = OPT_NOP;
    b[i + 1] = OPT_NOP;
    b[i + 2] = OPT_SACK;
    b[i + 3] = 2 + blocks * SACK_BLOCK_LEN;
    i += SACK_BASE_LEN;
    for (let k = 0; k < blocks; k++, i += SACK_BLOCK_LEN) {
      b.writeUInt32BE(o.sack[k][0] >>> 0, i);
      b.writeUInt32BE(o.sack[k][1] >>> 0, i + 4);
    }
  }
  return i - at;
}

/** A TCP segment as a value: parsed from a view, emitted into one. */
export class TcpRepr implements TcpReprInit {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
  readonly urgent: number;
  readonly options: TcpOptions;
  /** On parse, a subarray of the segment (no copy). */
  readonly payload: Buffer;

  constructor(init: TcpReprInit) {
    this.srcPort = init.srcPort;
    this.dstPort = init.dstPort;
    this.seq = init.seq;
    this.ack = init.ack;
    this.flags = init.flags;
    this.window = init.window;
    this.urgent = init.urgent;
    this.options = init.options;
    this.payload = init.payload;
  }

  /**
   * Structure only: the checksum covers the IP pseudo-header, so the caller
   * verifies it with `view.verifyChecksum(src, dst)`. Port 0 is reserved.
   */
  static parse(view: TcpView): TcpRepr | WireError {
    const srcPort = view.srcPort;
    const dstPort = view.dstPort;
    if (srcPort === 0 || dstPort === 0) return wireError('bad_port');
    const options = parseTcpOptions(view.options);
    if (options instanceof WireError) return options;
    return new TcpRepr({
      srcPort,
      dstPort,
      seq: view.seq,
      ack: view.ack,
      flags: view.flags,
      window: view.window,
      urgent: view.urgent,
      options,
      payload: view.payload,
    });
  }

  bufferLen(): number {
    return TCP_HEADER_LEN + optionsLen(this.options) + this.payload.length;
  }

  /**
   * Writes the segment into `view`, which spans exactly bufferLen() bytes.
   * With the IP addresses, the checksum is filled too.
   */
  emit(view: TcpView, src?: Buffer, dst?: Buffer): void {
    const seg = view.buf;
    view.srcPort = this.srcPort;
    view.dstPort = this.dstPort;
    view.seq = this.seq;
    view.ack = this.ack;
    const optLen = emitOptions(this.options, seg, TCP_HEADER_LEN);
    seg[DATA_OFFSET] = ((TCP_HEADER_LEN + optLen) / 4) << 4;
    view.flags = this.flags;
    view.window = this.window;
    view.checksum = 0;
    view.urgent = this.urgent;
    this.payload.copy(seg, TCP_HEADER_LEN + optLen);
    if (src !== undefined && dst !== undefined) view.fillChecksum(src, dst);
  }
}
