// Bounded plain-HTTP fetches for AIA caIssuers and OCSP (RFC 5280 4.2.2.1 and
// RFC 6960 A.1 use http:, not https:, which would need validation of its own).
// Every fetch has a deadline and a size cap because the URL comes from a
// certificate an arbitrary server presented. For the same reason the
// address a URL leads to is checked (FetchAddressCheck) after DNS resolution
// and before connecting: a certificate must not make the concentrator fetch
// from its own host or its neighbours (cloud metadata).

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import { isIP, type LookupFunction } from 'node:net';

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  body?: Buffer;
  contentType?: string;
  timeoutMs: number;
  maxBytes: number;
}

export type HttpError = 'bad_url' | 'timeout' | 'too_large' | 'network' | 'http_status' | 'egress_denied';

export type HttpResult =
  | { ok: true; status: number; contentType: string | null; body: Buffer }
  | { ok: false; error: HttpError; detail: string };

/** Injected by tests and by callers with their own egress. */
export type HttpFetcher = (req: HttpRequest) => Promise<HttpResult>;

/** Returns why the concentrator must not connect to `address`:`port`, or null to allow it. */
export type FetchAddressCheck = (address: string, port: number) => string | null;

/** Unchecked: for tests and callers whose destinations are not chosen by a client. */
export const httpFetch: HttpFetcher = (req) => fetchChecked(req, null);

/** A fetcher that refuses, with an 'egress_denied' error value, every address `check` refuses. */
export function createHttpFetch(check: FetchAddressCheck): HttpFetcher {
  return (req) => fetchChecked(req, check);
}

function fetchChecked(req: HttpRequest, check: FetchAddressCheck | null): Promise<HttpResult> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      resolve({ ok: false, error: 'bad_url', detail: `not a URL: ${req.url}` });
      return;
    }
    if (url.protocol !== 'http:') {
      resolve({ ok: false, error: 'bad_url', detail: `only http: URLs are fetched, got ${url.protocol}` });
      return;
    }
    const port = url.port === '' ? 80 : Number(url.port);
    // An IP literal is connected to without a lookup, so it is checked here.
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const refusedLiteral = check !== null && isIP(literal) !== 0 ? check(literal, port) : null;
    if (refusedLiteral !== null) {
      resolve({ ok: false, error: 'egress_denied', detail: `${req.url}: refused: ${refusedLiteral}` });
      return;
    }
    let refused: string | null = null;
    let settled = false;
    const done = (result: HttpResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const headers: Record<string, string> = { connection: 'close' };
    if (req.contentType) headers['content-type'] = req.contentType;
    if (req.body) headers['content-length'] = String(req.body.length);
    // agent: false so a slow responder never holds a pooled socket.
    const lookup = check === null ? undefined : checkedLookup(check, port, (why) => (refused = why));
    const request = http.request(url, { method: req.method, headers, agent: false, lookup }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        done({ ok: false, error: 'http_status', detail: `${req.url} answered HTTP ${status}` });
        return;
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > req.maxBytes) {
        done({ ok: false, error: 'too_large', detail: `${req.url} declared ${declared} bytes, cap is ${req.maxBytes}` });
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBytes) done({ ok: false, error: 'too_large', detail: `${req.url} sent more than ${req.maxBytes} bytes` });
        else parts.push(chunk);
      });
      res.on('end', () => done({ ok: true, status, contentType: res.headers['content-type'] ?? null, body: Buffer.concat(parts) }));
      res.on('error', (err) => done({ ok: false, error: 'network', detail: `${req.url}: ${err.message}` }));
    });
    const timer = setTimeout(() => done({ ok: false, error: 'timeout', detail: `${req.url} did not answer within ${req.timeoutMs} ms` }), req.timeoutMs);
    request.on('error', (err) => {
      if (refused !== null) done({ ok: false, error: 'egress_denied', detail: `${req.url}: refused: ${refused}` });
      else done({ ok: false, error: 'network', detail: `${req.url}: ${err.message}` });
    });
    request.end(req.body);
  });
}

/**
 * dns.lookup, keeping only the addresses `check` allows; none left fails the
 * lookup (and so the request) before any connection is attempted.
 */
function checkedLookup(check: FetchAddressCheck, port: number, onRefused: (why: string) => void): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      let firstRefusal: string | null = null;
      const allowed = addresses.filter((a) => {
        const why = check(a.address, port);
        firstRefusal ??= why;
        return why === null;
      });
      if (allowed.length === 0) {
        const why = firstRefusal ?? `${hostname} has no address`;
        onRefused(why);
        return callback(Object.assign(new Error(`refused: ${why}`), { code: 'EGRESS_DENIED' }), '', 0);
      }
      if (options.all === true) return callback(null, allowed);
      callback(null, allowed[0].address, allowed[0].family);
    });
  };
}

/** Runs an injected fetcher so that a throwing one becomes a 'network' error value like any other. */
export async function fetchAsValue(fetch: HttpFetcher, req: HttpRequest): Promise<HttpResult> {
  try {
    return await fetch(req);
  } catch (err) {
    return { ok: false, error: 'network', detail: `${req.url}: ${(err as Error).message}` };
  }
}
