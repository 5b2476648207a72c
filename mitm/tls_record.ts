// TLS record framing for the first handshake message of a stream (RFC 8446
// §5.1, RFC 5246 §6.2.1), plus a sniff of the stream's first bytes so that
// plain HTTP, SSLv2 hellos and garbage on a TLS port get a precise reason.
// Sans-IO: it reads a contiguous view of everything received so far and never
// copies the stream; only a handshake message that spans records is
// reassembled into its own buffer.

export const RECORD_HEADER_LEN = 5;
/** RFC 8446 §5.1: TLSPlaintext.length MUST NOT exceed 2^14. */
export const MAX_PLAINTEXT_LEN = 1 << 14;
export const HANDSHAKE_HEADER_LEN = 4;
/**
 * What each TLS socket of an inspected flow buffers before the relay pauses
 * the other side. With node's 16 KB, one record's plaintext (MAX_PLAINTEXT_LEN)
 * reached the mark while its write was in flight, so the relay paused and
 * resumed the other side's reading once per record. As much as the TCP
 * stack's stream buffers for writes (tcp_stream.ts), so a flow under
 * backpressure holds at most 48 KB more per direction than before.
 */
export const TLS_HIGH_WATER_MARK = 4 * MAX_PLAINTEXT_LEN;

// RFC 8446 §5.1 ContentType.
export const CONTENT_TYPE_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_TYPE_ALERT = 21;
export const CONTENT_TYPE_HANDSHAKE = 22;
export const CONTENT_TYPE_APPLICATION_DATA = 23;
export const CONTENT_TYPE_HEARTBEAT = 24; // RFC 6520

const CONTENT_TYPE_NAMES: Record<number, string> = {
  [CONTENT_TYPE_CHANGE_CIPHER_SPEC]: 'change_cipher_spec',
  [CONTENT_TYPE_ALERT]: 'alert',
  [CONTENT_TYPE_HANDSHAKE]: 'handshake',
  [CONTENT_TYPE_APPLICATION_DATA]: 'application_data',
  [CONTENT_TYPE_HEARTBEAT]: 'heartbeat',
};

// RFC 5246 appendix E.2: an SSLv2 CLIENT-HELLO has the high bit of its first
// byte set (2-byte record header) and message type 1 in its third byte.
const SSL2_MT_CLIENT_HELLO = 1;
// Longest HTTP method we wait for before calling a stream plain HTTP
// ("OPTIONS " and "CONNECT " are 8 bytes with their space).
const HTTP_SNIFF_LEN = 8;
const MIN_HTTP_METHOD_LEN = 3;

/**
 * Why a stream was given up on. `reason` is a stable key for counters and
 * policy; `detail` names the offending value for a person reading the log.
 */
export interface FramingFailure {
  kind: 'not_tls' | 'error';
  reason: string;
  detail: string;
}

export type FramingResult =
  | { kind: 'need_more' }
  | { kind: 'message'; body: Buffer; streamBytes: number }
  | FramingFailure;

const NEED_MORE: FramingResult = { kind: 'need_more' };

function contentTypeName(t: number): string {
  return `${CONTENT_TYPE_NAMES[t] ?? 'unknown'}(${t})`;
}

function isUpperAscii(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

/**
 * Classifies a stream that does not start with a handshake record. Returns
 * null while more bytes are needed to tell plain HTTP from garbage, so the
 * verdict does not depend on how the bytes were segmented.
 */
export function sniffNonHandshake(s: Buffer): FramingFailure | null {
  const b0 = s[0];
  if (CONTENT_TYPE_NAMES[b0] !== undefined) {
    if (s.length < 2) return null;
    if (s[1] === 3) {
      return {
        kind: 'error',
        reason: 'unexpected_record_type',
        detail: `first record is ${contentTypeName(b0)}, expected handshake(22) carrying a ClientHello`,
      };
    }
    return { kind: 'not_tls', reason: 'unknown_protocol', detail: `first bytes 0x${s.subarray(0, 2).toString('hex')} are not a TLS record header` };
  }
  if ((b0 & 0x80) !== 0) {
    if (s.length < 3) return null;
    if (s[2] === SSL2_MT_CLIENT_HELLO) {
      return { kind: 'not_tls', reason: 'sslv2_client_hello', detail: 'SSLv2-format CLIENT-HELLO (RFC 6176 prohibits SSL 2.0)' };
    }
    return { kind: 'not_tls', reason: 'unknown_protocol', detail: `first bytes 0x${s.subarray(0, 3).toString('hex')} are not a TLS record header` };
  }
  if (isUpperAscii(b0)) {
    const n = Math.min(s.length, HTTP_SNIFF_LEN);
    for (let i = 1; i < n; i++) {
      const c = s[i];
      if (c === 0x20 && i >= MIN_HTTP_METHOD_LEN) {
        return { kind: 'not_tls', reason: 'plain_http', detail: `plain HTTP request (method ${s.toString('latin1', 0, i)}) on a TLS port` };
      }
      if (!isUpperAscii(c)) break;
      if (i === n - 1 && n < HTTP_SNIFF_LEN) return null;
    }
    if (s.length === 1) return null;
  }
  const shown = s.subarray(0, Math.min(s.length, 4)).toString('hex');
  return { kind: 'not_tls', reason: 'unknown_protocol', detail: `first bytes 0x${shown} are not a TLS record header` };
}

/**
 * Reads the first handshake message of a stream out of however many
 * handshake records carry it. Feed it the whole stream received so far (one
 * contiguous view, growing); it resumes where it stopped.
 */
export class HandshakeMessageReader {
  private pos = 0; // stream offset parsed up to
  private recordEnd = -1; // end offset of the current record's payload; -1 before a header
  private records = 0;
  private headGot = 0; // handshake header bytes seen (0..4)
  private msgLen = 0;
  private bodyStart = -1; // stream offset of a body that lies inside one record
  private body: Buffer | null = null; // reassembly buffer for a body spanning records
  private bodyGot = 0;

  constructor(
    private readonly expectedType: number,
    private readonly expectedName: string,
    private readonly maxMessageLen: number,
    private readonly maxRecords: number,
  ) {}

  advance(s: Buffer): FramingResult {
    for (;;) {
      if (this.recordEnd < 0) {
        if (this.pos === 0 && s.length > 0 && s[0] !== CONTENT_TYPE_HANDSHAKE) return sniffNonHandshake(s) ?? NEED_MORE;
        if (s.length - this.pos < RECORD_HEADER_LEN) return NEED_MORE;
        const bad = this.readRecordHeader(s);
        if (bad) return bad;
      }
      const avail = Math.min(s.length, this.recordEnd);
      const bad = this.readHandshakeHeader(s, avail);
      if (bad) return bad;
      if (this.headGot === HANDSHAKE_HEADER_LEN) {
        const body = this.readBody(s, avail);
        if (body) {
          if (this.pos < this.recordEnd) {
            // A client sends nothing after its ClientHello until the server
            // answers, so more handshake bytes in that record are malformed.
            return {
              kind: 'error',
              reason: 'trailing_handshake_data',
              detail: `${this.recordEnd - this.pos} bytes follow the ${this.expectedName} in its record`,
            };
          }
          return { kind: 'message', body, streamBytes: this.recordEnd };
        }
      }
      if (this.pos < this.recordEnd) return NEED_MORE;
      this.recordEnd = -1;
    }
  }

  private readRecordHeader(s: Buffer): FramingFailure | null {
    const at = this.pos;
    const type = s[at];
    const first = this.records === 0;
    if (type !== CONTENT_TYPE_HANDSHAKE) {
      // RFC 8446 §5.1: handshake messages MUST NOT be interleaved with other record types.
      return {
        kind: 'error',
        reason: 'unexpected_record_type',
        detail: `record ${this.records + 1} at offset ${at} is ${contentTypeName(type)} before the ${this.expectedName} was complete`,
      };
    }
    if (s[at + 1] !== 3 || s[at + 2] > 4) {
      return {
        kind: first ? 'not_tls' : 'error',
        reason: 'bad_record_version',
        detail: `record ${this.records + 1} at offset ${at} has version 0x${s.toString('hex', at + 1, at + 3)}, expected 0x0300..0x0304`,
      };
    }
    const len = s.readUInt16BE(at + 3);
    if (len === 0) {
      // RFC 8446 §5.1: zero-length fragments of Handshake types MUST NOT be sent.
      return { kind: 'error', reason: 'empty_record', detail: `record ${this.records + 1} at offset ${at} is a zero-length handshake record` };
    }
    if (len > MAX_PLAINTEXT_LEN) {
      return { kind: 'error', reason: 'record_overflow', detail: `record ${this.records + 1} at offset ${at} declares ${len} bytes, more than 2^14` };
    }
    this.records++;
    if (this.records > this.maxRecords) {
      return { kind: 'error', reason: 'too_many_records', detail: `${this.expectedName} still incomplete after ${this.maxRecords} records` };
    }
    this.pos = at + RECORD_HEADER_LEN;
    this.recordEnd = this.pos + len;
    return null;
  }

  private readHandshakeHeader(s: Buffer, avail: number): FramingFailure | null {
    while (this.headGot < HANDSHAKE_HEADER_LEN && this.pos < avail) {
      const byte = s[this.pos++];
      if (this.headGot === 0) {
        if (byte !== this.expectedType) {
          return { kind: 'error', reason: 'unexpected_handshake_type', detail: `first handshake message has type ${byte}, expected ${this.expectedName}(${this.expectedType})` };
        }
      } else {
        this.msgLen = (this.msgLen << 8) | byte;
      }
      this.headGot++;
      if (this.headGot === HANDSHAKE_HEADER_LEN) {
        if (this.msgLen > this.maxMessageLen) {
          return { kind: 'error', reason: 'client_hello_too_large', detail: `${this.expectedName} declares ${this.msgLen} bytes, limit is ${this.maxMessageLen}` };
        }
        // The usual case: the whole message sits in this record, read in place.
        if (this.recordEnd - this.pos >= this.msgLen) this.bodyStart = this.pos;
        else this.body = Buffer.allocUnsafe(this.msgLen);
      }
    }
    return null;
  }

  /** Returns the complete message body, or null while bytes are missing. */
  private readBody(s: Buffer, avail: number): Buffer | null {
    if (this.bodyStart >= 0) {
      const end = this.bodyStart + this.msgLen;
      if (avail < end) {
        this.pos = avail;
        return null;
      }
      this.pos = end;
      return s.subarray(this.bodyStart, end);
    }
    const body = this.body as Buffer;
    const n = Math.min(avail - this.pos, this.msgLen - this.bodyGot);
    s.copy(body, this.bodyGot, this.pos, this.pos + n);
    this.bodyGot += n;
    this.pos += n;
    return this.bodyGot === this.msgLen ? body : null;
  }
}
