// HTTP/1.1 message heads (RFC 9112 §2-§5): a bounded accumulator that finds
// the empty line ending a head, and parsers that keep only the fields the
// log and the body framing need. No other header value is retained.

const LF = 0x0a;
const CR = 0x0d;
const INITIAL_HEAD_BUF = 1024;

export type HeadStatus = 'more' | 'done' | 'too_large';

/** Collects one head (or trailer section) across chunks, copying at most `max` bytes. */
export class HeadReader {
  private buf = Buffer.alloc(INITIAL_HEAD_BUF);
  private len = 0;
  private lineStart = 0;
  /** Offset just past the head in the last chunk fed, when done. */
  next = 0;

  /** `trailers`: an immediately empty line ends the section (RFC 9112 §7.1.2). */
  constructor(private readonly max: number, private readonly trailers: boolean) {}

  get bytes(): number {
    return this.len;
  }

  reset(): void {
    this.len = 0;
    this.lineStart = 0;
    if (this.buf.length > 4 * INITIAL_HEAD_BUF) this.buf = Buffer.alloc(INITIAL_HEAD_BUF);
  }

  feed(chunk: Buffer, off: number): HeadStatus {
    const end = chunk.length;
    while (off < end) {
      // RFC 9112 §2.2: empty lines before the request-line are ignored.
      if (this.len === 0 && !this.trailers) {
        while (off < end && (chunk[off] === CR || chunk[off] === LF)) off++;
        if (off === end) break;
      }
      const lf = chunk.indexOf(LF, off);
      const stop = lf < 0 ? end : lf + 1;
      if (!this.append(chunk, off, stop)) return 'too_large';
      off = stop;
      if (lf < 0) break;
      let content = this.len - 1 - this.lineStart;
      if (content > 0 && this.buf[this.len - 2] === CR) content--;
      this.lineStart = this.len;
      if (content === 0) {
        this.next = off;
        return 'done';
      }
    }
    this.next = off;
    return 'more';
  }

  text(): string {
    return this.buf.toString('latin1', 0, this.len);
  }

  private append(chunk: Buffer, from: number, to: number): boolean {
    const need = this.len + (to - from);
    if (need > this.max) return false;
    if (need > this.buf.length) {
      const grown = Buffer.alloc(Math.min(Math.max(need, this.buf.length * 2), this.max));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len, from, to);
    this.len = need;
    return true;
  }
}

/** The fields of a head that logging and framing use. */
export interface HeadFields {
  host: string | null;
  userAgent: string | null;
  contentLength: string | null;
  transferEncoding: string | null;
  upgrade: string | null;
  connection: string | null;
}

export interface RequestHead extends HeadFields {
  method: string;
  target: string;
}

export interface ResponseHead extends HeadFields {
  status: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP\/\d\.\d$/;
const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})(?:[ \t].*)?$/;

/** Splits a head into lines, CR before LF removed. */
function lines(text: string): string[] {
  const out = text.split('\n');
  out.pop(); // the head ends with LF, so the last element is empty
  for (let i = 0; i < out.length; i++) if (out[i].endsWith('\r')) out[i] = out[i].slice(0, -1);
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

export function parseRequestHead(text: string): RequestHead | string {
  const ls = lines(text);
  const m = REQUEST_LINE.exec(ls[0] ?? '');
  if (!m) return 'malformed request line';
  return { method: m[1], target: m[2], ...parseFields(ls) };
}

export function parseResponseHead(text: string): ResponseHead | string {
  const ls = lines(text);
  const m = STATUS_LINE.exec(ls[0] ?? '');
  if (!m) return 'malformed status line';
  return { status: Number(m[1]), ...parseFields(ls) };
}

/** Method and target from the first line of a head that was too large to finish. */
export function peekRequestLine(text: string): { method: string; target: string } | null {
  const lf = text.indexOf('\n');
  if (lf < 0) return null;
  const m = REQUEST_LINE.exec(text.slice(0, lf).replace(/\r$/, ''));
  return m ? { method: m[1], target: m[2] } : null;
}

// Lines that are not "token: value" are skipped rather than fatal: a server
// answers them with 400, and that exchange is still worth a record.
function parseFields(ls: string[]): HeadFields {
  const f: HeadFields = { host: null, userAgent: null, contentLength: null, transferEncoding: null, upgrade: null, connection: null };
  let last: keyof HeadFields | null = null;
  for (let i = 1; i < ls.length; i++) {
    const line = ls[i];
    // RFC 9112 §5.2: obs-fold continues the previous value; replace with SP.
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (last !== null && f[last] !== null) f[last] += ' ' + line.trim();
      continue;
    }
    last = null;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) continue;
    const key = FIELD_KEYS.get(name.toLowerCase());
    if (key === undefined) continue;
    const value = line.slice(colon + 1).trim();
    // RFC 9110 §5.3: repeated fields combine as a comma-separated list.
    f[key] = f[key] === null ? value : `${f[key]}, ${value}`;
    last = key;
  }
  return f;
}

const FIELD_KEYS = new Map<string, keyof HeadFields>([
  ['host', 'host'],
  ['user-agent', 'userAgent'],
  ['content-length', 'contentLength'],
  ['transfer-encoding', 'transferEncoding'],
  ['upgrade', 'upgrade'],
  ['connection', 'connection'],
]);

/**
 * RFC 9110 §8.6: a list of identical values is that value; anything else
 * that is not 1*DIGIT is invalid. Returns null when invalid.
 */
export function parseContentLength(raw: string): number | null {
  const parts = raw.split(',').map((s) => s.trim());
  const first = parts[0];
  if (!/^\d{1,15}$/.test(first) || parts.some((p) => p !== first)) return null;
  return Number(first);
}

/** Lowercased transfer codings, in order (RFC 9112 §6.1). */
export function transferCodings(raw: string): string[] {
  return raw.split(',').map((s) => s.trim().split(';')[0].trim().toLowerCase()).filter((s) => s !== '');
}

export function listHas(raw: string | null, token: string): boolean {
  return raw !== null && raw.split(',').some((s) => s.trim().toLowerCase() === token);
}
