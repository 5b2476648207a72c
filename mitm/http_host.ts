// The name a plain HTTP/1.x request asks for, read from the client's first
// bytes so that policy's `hosts` and `categories` can apply to plain HTTP:
// the authority of an absolute-form target, else the Host field (RFC 9112
// §3.2.2). Sans-IO and bounded: the head must end within `maxBytes`, so a
// client cannot push its Host past what is read.

import { isIP } from 'node:net';
import { HeadReader, parseRequestHead } from './http_log/h1_head';

/** As large as node's own default header limit. */
export const DEFAULT_MAX_REQUEST_HEAD_BYTES = 16 * 1024;

export type RequestHostResult =
  | { kind: 'need_more' }
  /** `host` null: the request names no host (HTTP/1.0 without Host) or an IP address. */
  | { kind: 'done'; host: string | null }
  | { kind: 'error'; reason: 'head_too_large' | 'malformed_request' };

const NEED_MORE: RequestHostResult = { kind: 'need_more' };

export class RequestHostReader {
  private readonly head: HeadReader;
  private result: RequestHostResult = NEED_MORE;

  constructor(maxBytes = DEFAULT_MAX_REQUEST_HEAD_BYTES) {
    this.head = new HeadReader(maxBytes, false);
  }

  /** Feeds the client's bytes in order; once not need_more the result is final. */
  push(chunk: Buffer): RequestHostResult {
    if (this.result.kind !== 'need_more') return this.result;
    const status = this.head.feed(chunk, 0);
    if (status === 'too_large') this.result = { kind: 'error', reason: 'head_too_large' };
    else if (status === 'done') {
      const req = parseRequestHead(this.head.text());
      this.result = typeof req === 'string' ? { kind: 'error', reason: 'malformed_request' } : { kind: 'done', host: requestHost(req.target, req.host) };
    }
    return this.result;
  }
}

/** The host name a request is for, lowercased, without port or trailing dot; null for none or an address. */
export function requestHost(target: string, hostField: string | null): string | null {
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target);
  const authority = absolute ? absolute[1].replace(/^.*@/, '') : hostField;
  if (authority === null) return null;
  // Several Host fields (joined with commas) make the request invalid (RFC 9112 §3.2): no name.
  if (authority.includes(',')) return null;
  const bracketed = /^\[(.*)\](?::\d*)?$/.exec(authority.trim());
  if (bracketed) return null;
  const name = authority.trim().replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
  return name === '' || isIP(name) !== 0 ? null : name;
}
