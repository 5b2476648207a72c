// A minimal DER (X.690) reader and writer: just enough for X.509 certificates
// and OCSP (RFC 6960). Views are subarrays of the input, never copies, so the
// exact signed bytes (tbsCertificate, tbsResponseData) stay available.

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

/** Context-specific tag number n, constructed (EXPLICIT or IMPLICIT SEQUENCE). */
export const ctx = (n: number): number => 0xa0 | n;
/** Context-specific tag number n, primitive (IMPLICIT of a primitive type). */
export const ctxPrim = (n: number): number => 0x80 | n;

export class DerError extends Error {}

/** One TLV element. `raw` is the whole element, `content` its value bytes. */
export interface Tlv {
  readonly tag: number;
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** Reads the TLV at `offset`; multi-byte tags (>= 31) are not used by X.509/OCSP and are rejected. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated header');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tag');
  let len = buf[offset + 1];
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // DER forbids the indefinite form (n = 0); 4 length bytes is 4 GiB, plenty.
    if (n === 0 || n > 4) throw new DerError('unsupported length form');
    if (pos + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i];
    pos += n;
  }
  const end = pos + len;
  if (end > buf.length) throw new DerError('truncated content');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(pos, end) };
}

/** The children of a constructed element, in order. */
export function children(tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < tlv.content.length) {
    const child = readTlv(tlv.content, off);
    out.push(child);
    off += child.raw.length;
  }
  return out;
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}`);
  return tlv;
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 4.1.2.5.1 pivot 1950) or GeneralizedTime (YYYYMMDDHHMMSS[.f]Z). */
export function decodeTime(tlv: Tlv): Date {
  const s = tlv.content.toString('latin1');
  const m =
    tlv.tag === TAG_UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s);
  if (!m) throw new DerError(`bad time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (tlv.tag === TAG_UTC_TIME) year += year >= 50 ? 1900 : 2000;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** The content of a BIT STRING without its leading unused-bits byte. */
export function bitStringBytes(tlv: Tlv): Buffer {
  expectTag(tlv, TAG_BIT_STRING, 'BIT STRING');
  if (tlv.content.length === 0) throw new DerError('empty BIT STRING');
  return tlv.content.subarray(1);
}

// ---- writer ----

/** Tag and definite-form length (X.690 8.1.3). */
function header(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/**
 * One element around already-encoded content. Given several parts it frames
 * them in one copy, which lets the minter keep the parts that never change
 * (issuer, SPKI, fixed extensions) pre-encoded.
 */
export function encode(tag: number, content: Buffer | Buffer[]): Buffer {
  if (!Array.isArray(content)) return Buffer.concat([header(tag, content.length), content]);
  let len = 0;
  for (const part of content) len += part.length;
  return Buffer.concat([header(tag, len), ...content]);
}

export function encodeOid(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  const out: number[] = [];
  const push = (v: number): void => {
    const groups: number[] = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  };
  push(arcs[0] * 40 + arcs[1]);
  for (const arc of arcs.slice(2)) push(arc);
  return encode(TAG_OID, Buffer.from(out));
}
