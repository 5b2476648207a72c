// The few DNS message fields the forwarder reads or writes (RFC 1035 §4.1):
// the header ID and flags, the question section it matches answers by, the
// EDNS(0) payload size (RFC 6891), and the answers it makes itself
// (SERVFAIL, header-only truncated). It never parses records beyond that.

export const HEADER_LEN = 12;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const OPCODE_MASK = 0x7800;
const RCODE_SERVFAIL = 2;
const RCODE_NOTIMP = 4;
const RCODE_REFUSED = 5;
/** OPCODE QUERY (RFC 1035 §4.1.1): the only kind forwarded. */
const OPCODE_QUERY = 0;
const TYPE_OPT = 41;

export function isDnsQuery(b: Buffer): boolean {
  return b.length >= HEADER_LEN && (b.readUInt16BE(2) & FLAG_QR) === 0;
}

export function isDnsResponse(b: Buffer): boolean {
  return b.length >= HEADER_LEN && (b.readUInt16BE(2) & FLAG_QR) !== 0;
}

export function isTruncated(b: Buffer): boolean {
  return (b.readUInt16BE(2) & FLAG_TC) !== 0;
}

/** A copy of `msg` with the header ID replaced. */
export function withId(msg: Buffer, id: number): Buffer {
  const out = Buffer.from(msg);
  out.writeUInt16BE(id, 0);
  return out;
}

/**
 * The question section (QNAME, QTYPE, QCLASS) of a message with exactly one
 * question (RFC 9619: QDCOUNT is 1 in practice), or null. The name must be
 * uncompressed: it is the first name of the message.
 */
export function questionOf(b: Buffer): Buffer | null {
  if (b.length < HEADER_LEN || b.readUInt16BE(4) !== 1) return null;
  let off = HEADER_LEN;
  for (let labels = 0; labels < 128; labels++) {
    if (off >= b.length) return null;
    const len = b[off];
    if (len === 0) {
      return off + 5 <= b.length ? b.subarray(HEADER_LEN, off + 5) : null;
    }
    if ((len & 0xc0) !== 0) return null;
    off += 1 + len;
  }
  return null;
}

/** Same question: names compared ASCII case-insensitively (RFC 4343), type and class exactly. */
export function sameQuestion(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a[i];
    let y = b[i];
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/**
 * The largest answer the client accepts over UDP: its EDNS(0) payload size
 * (RFC 6891 §6.2.3) or 512, and never more than fits one tunnel packet.
 */
export function maxUdpAnswerSize(query: Buffer, tunnelLimit: number): number {
  const edns = ednsPayloadSize(query);
  return Math.min(edns ?? 512, tunnelLimit);
}

function ednsPayloadSize(q: Buffer): number | null {
  if (q.length < HEADER_LEN) return null;
  const qd = q.readUInt16BE(4);
  const an = q.readUInt16BE(6);
  const ns = q.readUInt16BE(8);
  const ar = q.readUInt16BE(10);
  let off = HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    off = skipName(q, off);
    if (off < 0 || off + 4 > q.length) return null;
    off += 4;
  }
  for (let i = 0; i < an + ns + ar; i++) {
    off = skipName(q, off);
    if (off < 0 || off + 10 > q.length) return null;
    const type = q.readUInt16BE(off);
    const cls = q.readUInt16BE(off + 2);
    const rdlen = q.readUInt16BE(off + 8);
    if (type === TYPE_OPT) return Math.max(512, cls);
    off += 10 + rdlen;
  }
  return null;
}

function skipName(b: Buffer, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= b.length) return -1;
    const len = b[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

/** Header + question, no records: the shape of the answers the forwarder makes itself. */
function headerAndQuestion(msg: Buffer, question: Buffer | null, flags: number): Buffer {
  const out = Buffer.alloc(HEADER_LEN + (question?.length ?? 0));
  out.writeUInt16BE(msg.readUInt16BE(0), 0);
  out.writeUInt16BE(flags, 2);
  if (question !== null) {
    out.writeUInt16BE(1, 4);
    question.copy(out, HEADER_LEN);
  }
  return out;
}

/** SERVFAIL for `query` (same ID, opcode and question; RD copied, RA set): "try again later". */
export function servfailFor(query: Buffer): Buffer {
  return errorAnswer(query, RCODE_SERVFAIL);
}

/** REFUSED for `query`, likewise: this server will not answer this client now. */
export function refusedFor(query: Buffer): Buffer {
  return errorAnswer(query, RCODE_REFUSED);
}

function errorAnswer(query: Buffer, rcode: number): Buffer {
  const flags = query.readUInt16BE(2);
  return headerAndQuestion(query, questionOf(query), FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | rcode);
}

/** A message that is not a standard query (UPDATE, NOTIFY, ...: OPCODE other than QUERY). */
export function isOtherOpcode(query: Buffer): boolean {
  return ((query.readUInt16BE(2) & OPCODE_MASK) >> 11) !== OPCODE_QUERY;
}

/** NOTIMP for a message that is not a standard query: header only, its ID and opcode kept (RFC 1035 §4.1.1). */
export function notImplementedFor(query: Buffer): Buffer {
  const out = Buffer.alloc(HEADER_LEN);
  query.copy(out, 0, 0, 2);
  out.writeUInt16BE(FLAG_QR | (query.readUInt16BE(2) & OPCODE_MASK) | RCODE_NOTIMP, 2);
  return out;
}

/** Header + question only, TC set, no records: the RFC 2181 §9 way to say "use TCP". */
export function truncatedAnswer(answer: Buffer): Buffer {
  return headerAndQuestion(answer, questionOf(answer), answer.readUInt16BE(2) | FLAG_TC);
}
