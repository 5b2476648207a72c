// Bounded plain-HTTP fetches for AIA caIssuers and OCSP (RFC 5280 4.2.2.1 and
// RFC 6960 A.1 use http:, not https:, which would need validation of its own).
// Every fetch has a deadline and a size cap because the URL comes from a
// certificate an arbitrary server presented.

import http from 'node:http';

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  body?: Buffer;
  contentType?: string;
  timeoutMs: number;
  maxBytes: number;
}

export type HttpError = 'bad_url' | 'timeout' | 'too_large' | 'network' | 'http_status';

export type HttpResult =
  | { ok: true; status: number; contentType: string | null; body: Buffer }
  | { ok: false; error: HttpError; detail: string };

/** Injected by tests and by callers with their own egress. */
export type HttpFetcher = (req: HttpRequest) => Promise<HttpResult>;

export const httpFetch: HttpFetcher = (req) =>
  new Promise((resolve) => {
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
    const request = http.request(url, { method: req.method, headers, agent: false }, (res) => {
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
    request.on('error', (err) => done({ ok: false, error: 'network', detail: `${req.url}: ${err.message}` }));
    request.end(req.body);
  });

/** Runs an injected fetcher so that a throwing one becomes a 'network' error value like any other. */
export async function fetchAsValue(fetch: HttpFetcher, req: HttpRequest): Promise<HttpResult> {
  try {
    return await fetch(req);
  } catch (err) {
    return { ok: false, error: 'network', detail: `${req.url}: ${(err as Error).message}` };
  }
}
