// HTTP/2 frame layer (RFC 9113 §4) for one direction of a connection.
// Frame headers are reassembled across chunks; of each payload only what
// the logger reads is copied (header blocks, control frames, DATA's pad
// length). DATA and unknown payloads are skipped by counting, so a large
// DATA frame costs O(1) per chunk.

export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'); // §3.4
export const FRAME_HEADER_LEN = 9;

// §6 frame types
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

// §6 flags
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

/** §7 error codes, for readable log errors. */
const ERROR_NAMES = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** Encodes one frame (§4.1); for benchmarks and tests, the logger never sends. */
export function encodeFrame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_LEN + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
  payload.copy(out, FRAME_HEADER_LEN);
  return out;
}

/** Receives each complete frame; returns a protocol violation or null. */
export interface FrameSink {
  onFrame(type: number, flags: number, streamId: number, length: number, payload: Buffer): string | null;
}

/** Exact payload lengths of fixed-size frames (§6.3, §6.4, §6.7, §6.9). */
const FIXED_LEN = new Map<number, number>([[PRIORITY, 5], [RST_STREAM, 4], [PING, 8], [WINDOW_UPDATE, 4]]);
const GOAWAY_FIXED_LEN = 8;
const SETTING_LEN = 6;

const enum ReadState {
  Preface,
  Header,
  Payload,
}

export class H2FrameReader {
  private state: ReadState;
  private prefaceSeen = 0;
  private readonly header = Buffer.alloc(FRAME_HEADER_LEN);
  private headerFill = 0;
  private scratch = Buffer.alloc(1024);
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private length = 0;
  /** Payload bytes still to come, and how many leading ones to keep. */
  private remaining = 0;
  private keep = 0;
  private kept = 0;

  /** `maxKeep` bounds the payload copied for one frame (header blocks, SETTINGS). */
  constructor(private readonly sink: FrameSink, expectPreface: boolean, private readonly maxKeep: number) {
    this.state = expectPreface ? ReadState.Preface : ReadState.Header;
  }

  /** Feeds bytes; returns a violation (and then must not be fed again) or null. */
  feed(chunk: Buffer): string | null {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.state === ReadState.Preface) {
        while (off < end && this.prefaceSeen < CONNECTION_PREFACE.length) {
          if (chunk[off++] !== CONNECTION_PREFACE[this.prefaceSeen++]) return 'client connection preface mismatch';
        }
        if (this.prefaceSeen === CONNECTION_PREFACE.length) this.state = ReadState.Header;
      } else if (this.state === ReadState.Header) {
        const n = Math.min(FRAME_HEADER_LEN - this.headerFill, end - off);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        if (this.headerFill < FRAME_HEADER_LEN) break;
        this.headerFill = 0;
        const bad = this.startFrame();
        if (bad) return bad;
        if (this.remaining === 0) {
          const v = this.dispatch();
          if (v) return v;
        }
      } else {
        const n = Math.min(this.remaining, end - off);
        const copy = Math.min(n, this.keep - this.kept);
        if (copy > 0) {
          chunk.copy(this.scratch, this.kept, off, off + copy);
          this.kept += copy;
        }
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          const v = this.dispatch();
          if (v) return v;
        }
      }
    }
    return null;
  }

  private startFrame(): string | null {
    const h = this.header;
    this.length = (h[0] << 16) | (h[1] << 8) | h[2];
    this.type = h[3];
    this.flags = h[4];
    // §4.1: the reserved bit is ignored on receipt.
    this.streamId = h.readUInt32BE(5) & 0x7fffffff;
    const keep = this.keepFor();
    if (typeof keep === 'string') return keep;
    if (keep > this.scratch.length) this.scratch = Buffer.alloc(Math.max(keep, this.scratch.length * 2));
    this.keep = keep;
    this.kept = 0;
    this.remaining = this.length;
    this.state = ReadState.Payload;
    return null;
  }

  private keepFor(): number | string {
    const { type, length } = this;
    const fixed = FIXED_LEN.get(type);
    if (fixed !== undefined) return length === fixed ? fixed : `FRAME_SIZE_ERROR: frame type ${type} with length ${length}`;
    switch (type) {
      case DATA:
        if ((this.flags & FLAG_PADDED) === 0) return 0;
        return length >= 1 ? 1 : 'FRAME_SIZE_ERROR: padded DATA frame without a pad length';
      case HEADERS:
      case PUSH_PROMISE:
      case CONTINUATION:
        return length <= this.maxKeep ? length : `header block exceeds ${this.maxKeep} bytes`;
      case SETTINGS:
        if (length % SETTING_LEN !== 0) return 'FRAME_SIZE_ERROR: SETTINGS length not a multiple of 6';
        return length <= this.maxKeep ? length : 'SETTINGS frame too large';
      case GOAWAY:
        return length >= GOAWAY_FIXED_LEN ? GOAWAY_FIXED_LEN : 'FRAME_SIZE_ERROR: GOAWAY shorter than 8 bytes';
      default:
        return 0; // §4.1: unknown frame types are ignored
    }
  }

  private dispatch(): string | null {
    this.state = ReadState.Header;
    return this.sink.onFrame(this.type, this.flags, this.streamId, this.length, this.scratch.subarray(0, this.kept));
  }
}
