// createHttpLogger: picks the parser for an inspected connection and keeps
// the relay safe from it. ALPN "h2" means HTTP/2; "http/1.1", "http/1.0" or
// no ALPN means HTTP/1.1 unless the client opens with the HTTP/2 preface
// (prior knowledge, RFC 9113 §3.3). Any other ALPN is not HTTP: no records.
import { H1Connection, ParserContext } from './h1';
import { H2Connection } from './h2';
import { CONNECTION_PREFACE } from './h2_frames';
import { DEFAULT_MAX_HEADER_BYTES, HttpLoggerOptions, HttpRequestRecord } from './record';
import type { RelayTap } from '../../netstack';

const HTTP1_ALPN = new Set(['http/1.1', 'http/1.0']);

export function createHttpLogger(opts: HttpLoggerOptions): RelayTap {
  const ctx: ParserContext = {
    sniHost: opts.sniHost,
    now: opts.now,
    emit: opts.emit,
    maxHeaderBytes: opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
  };
  if (opts.alpn === 'h2') return guarded(new H2Connection(ctx), ctx, 'h2');
  if (opts.alpn === null || HTTP1_ALPN.has(opts.alpn)) return guarded(new PrefaceSniffer(ctx), ctx, 'http/1.1');
  return { clientToServer: () => undefined, serverToClient: () => undefined, end: () => undefined };
}

/**
 * Holds the first client bytes while they could still be the HTTP/2
 * preface (24 bytes at most), and server bytes that arrive meanwhile.
 */
class PrefaceSniffer implements RelayTap {
  private inner: RelayTap | null = null;
  private clientBytes: Buffer = Buffer.alloc(0);
  private serverHeld: Buffer[] = [];
  private serverHeldBytes = 0;

  constructor(private readonly ctx: ParserContext) {}

  clientToServer(chunk: Buffer): void {
    if (this.inner) return this.inner.clientToServer(chunk);
    this.clientBytes = Buffer.concat([this.clientBytes, chunk]);
    const n = Math.min(this.clientBytes.length, CONNECTION_PREFACE.length);
    const isPrefix = this.clientBytes.subarray(0, n).equals(CONNECTION_PREFACE.subarray(0, n));
    if (isPrefix && n < CONNECTION_PREFACE.length) return;
    this.decide(isPrefix ? new H2Connection(this.ctx) : new H1Connection(this.ctx));
  }

  serverToClient(chunk: Buffer): void {
    if (this.inner) return this.inner.serverToClient(chunk);
    this.serverHeld.push(Buffer.from(chunk));
    this.serverHeldBytes += chunk.length;
    // A server talking first without a client preface is not HTTP/2 prior knowledge.
    if (this.serverHeldBytes > this.ctx.maxHeaderBytes) this.decide(new H1Connection(this.ctx));
  }

  end(): void {
    if (!this.inner) this.decide(new H1Connection(this.ctx));
    (this.inner as RelayTap).end();
  }

  private decide(p: RelayTap): void {
    this.inner = p;
    const client = this.clientBytes;
    const held = this.serverHeld;
    this.clientBytes = Buffer.alloc(0);
    this.serverHeld = [];
    if (client.length > 0) p.clientToServer(client);
    for (const c of held) p.serverToClient(c);
  }
}

/**
 * The parsers return errors as values; this is the last line that keeps a
 * bug in them from ever breaking the relay. A throw ends logging for the
 * connection with one error record.
 */
function guarded(p: RelayTap, ctx: ParserContext, protocol: HttpRequestRecord['protocol']): RelayTap {
  let dead = false;
  const fail = (): void => {
    dead = true;
    const r: HttpRequestRecord = {
      type: 'http', protocol, method: '', host: ctx.sniHost ?? '', path: '', status: null,
      bytesUp: 0, bytesDown: 0, durationMs: 0, userAgent: null, error: 'internal logger error; logging stopped',
    };
    try {
      ctx.emit(r);
    } catch {
      // the sink itself failed; nothing more to do without risking the relay
    }
  };
  const run = (f: () => void): void => {
    if (dead) return;
    try {
      f();
    } catch {
      fail();
    }
  };
  return {
    clientToServer: (chunk) => run(() => p.clientToServer(chunk)),
    serverToClient: (chunk) => run(() => p.serverToClient(chunk)),
    end: () => run(() => p.end()),
  };
}
