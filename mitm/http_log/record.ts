// The log record and the few field normalisations every parser shares.
// A record carries no header other than host and user agent, and no body:
// Authorization, Cookie and form bodies have no field to leak into.

export interface HttpRequestRecord {
  type: 'http';
  protocol: 'http/1.1' | 'h2';
  method: string;
  host: string;
  path: string;
  status: number | null;
  /** Request body bytes, client to server (chunked framing and h2 padding excluded). */
  bytesUp: number;
  /** Response body bytes. */
  bytesDown: number;
  durationMs: number;
  userAgent: string | null;
  upgraded?: 'websocket' | string;
  streamId?: number;
  error?: string;
}

export interface HttpLoggerOptions {
  alpn: string | null;
  sniHost: string | null;
  now: () => number;
  emit: (r: HttpRequestRecord) => void;
  /** Bound on one request/response head, trailer section or h2 header block. */
  maxHeaderBytes?: number;
}

/** What both protocol parsers offer the engine; feeding never throws. */
/** Node's own limit is 16 KiB; 64 KiB leaves room for cookie-heavy sites. */
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** Pieces a parser keeps of one head or header block before merging them: tiny reads must not cost an object each. */
const MAX_KEPT_PIECES = 64;

/** Keeps a copy of `chunk` (its reader reuses the memory) in `pieces`, merged into one once they reach MAX_KEPT_PIECES. */
export function keepCopy(pieces: Buffer[], chunk: Buffer): void {
  if (pieces.length >= MAX_KEPT_PIECES) pieces.splice(0, pieces.length, Buffer.concat(pieces));
  pieces.push(Buffer.from(chunk));
}

/** Log lines stay bounded whatever the client sends. */
export const MAX_PATH_CHARS = 2048;
export const MAX_FIELD_CHARS = 512;
export const REDACTED = '[redacted]';

export function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max) + '...';
}

const ABSOLUTE_FORM = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/**
 * Splits an absolute-form target (RFC 9112 §3.2.2) into authority (userinfo
 * removed) and the rest; null for origin-form and other forms.
 */
export function splitAbsoluteForm(target: string): { authority: string; rest: string } | null {
  const m = ABSOLUTE_FORM.exec(target);
  if (!m) return null;
  const start = m[0].length;
  let end = start;
  while (end < target.length && !'/?#'.includes(target[end])) end++;
  return { authority: stripUserinfo(target.slice(start, end)), rest: target.slice(end) };
}

function stripUserinfo(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at < 0 ? authority : authority.slice(at + 1);
}

/**
 * The request target for the log: query values (and any fragment) replaced
 * by [redacted], keys kept. A part without '=' is redacted whole because
 * bare tokens ("/cb?eyJhbGci...") are as secret as key=value ones.
 */
export function redactTarget(target: string): string {
  const abs = splitAbsoluteForm(target);
  if (abs) target = (abs.rest === '' ? '/' : abs.rest);
  const hash = target.indexOf('#');
  const noFragment = hash < 0 ? target : target.slice(0, hash);
  const q = noFragment.indexOf('?');
  let out = q < 0 ? noFragment : noFragment.slice(0, q);
  if (q >= 0) {
    const parts = noFragment.slice(q + 1).split('&');
    out += '?' + parts.map(redactParam).join('&');
  }
  if (hash >= 0) out += '#' + REDACTED;
  return clip(out, MAX_PATH_CHARS);
}

function redactParam(part: string): string {
  if (part === '') return '';
  const eq = part.indexOf('=');
  return eq < 0 ? REDACTED : part.slice(0, eq) + '=' + REDACTED;
}

/** Host for the log: the given authority (userinfo dropped), else the SNI. */
export function logHost(raw: string | null, sniHost: string | null): string {
  const h = raw === null ? '' : stripUserinfo(raw.trim()).toLowerCase();
  if (h !== '') return clip(h, MAX_FIELD_CHARS);
  return sniHost ?? '';
}

export function logUserAgent(raw: string | null): string | null {
  return raw === null ? null : clip(raw.trim(), MAX_FIELD_CHARS);
}
