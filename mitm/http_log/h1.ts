// HTTP/1.1 connection parser for logs (RFC 9112). Two byte streams in,
// one record per request out. Responses pair with requests in order
// (pipelining, §9.3); the response's framing depends on its request (HEAD,
// CONNECT), so requests wait in a bounded queue until answered.
import { BodyReader, BodyMode } from './h1_body';
import {
  HeadReader, listHas, parseContentLength, parseRequestHead, parseResponseHead, peekRequestLine,
  RequestHead, transferCodings,
} from './h1_head';
import { HttpRequestRecord, keepCopy, logHost, logUserAgent, redactTarget, splitAbsoluteForm } from './record';
import type { RelayTap } from '../../netstack';

export interface ParserContext {
  sniHost: string | null;
  now: () => number;
  emit: (r: HttpRequestRecord) => void;
  maxHeaderBytes: number;
}

/** Requests sent ahead of their responses that we keep; browsers pipeline none. */
export const MAX_PIPELINED_REQUESTS = 64;

interface Exchange {
  method: string;
  host: string;
  path: string;
  userAgent: string | null;
  start: number;
  bytesUp: number;
  bytesDown: number;
  status: number | null;
  /** The request asked to switch protocols or open a tunnel: the client waits. */
  holdsClient: boolean;
  emitted: boolean;
}

type Side = 'head' | 'body' | 'hold' | 'stopped';

export class H1Connection implements RelayTap {
  private readonly queue: Exchange[] = [];
  private client: Side = 'head';
  private server: Side = 'head';
  private readonly clientHead: HeadReader;
  private readonly serverHead: HeadReader;
  private readonly clientBody: BodyReader;
  private readonly serverBody: BodyReader;
  /** The request whose body the client is sending. */
  private uploading: Exchange | null = null;
  /** The exchange whose response body the server is sending (null: unsolicited). */
  private answering: Exchange | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private headStart = 0;
  private ended = false;

  constructor(private readonly ctx: ParserContext) {
    this.clientHead = new HeadReader(ctx.maxHeaderBytes, false);
    this.serverHead = new HeadReader(ctx.maxHeaderBytes, false);
    this.clientBody = new BodyReader(ctx.maxHeaderBytes);
    this.serverBody = new BodyReader(ctx.maxHeaderBytes);
  }

  clientToServer(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.client === 'stopped') return;
      if (this.client === 'hold') {
        this.hold(off === 0 ? chunk : chunk.subarray(off));
        return;
      }
      if (this.client === 'head') {
        if (this.clientHead.bytes === 0) this.headStart = this.ctx.now();
        const r = this.clientHead.feed(chunk, off);
        off = this.clientHead.next;
        if (r === 'too_large') return this.requestHeadFailed(`request head exceeds ${this.ctx.maxHeaderBytes} bytes`);
        if (r === 'more') return;
        if (!this.onRequestHead()) return;
        continue;
      }
      const r = this.clientBody.feed(chunk, off);
      off = this.clientBody.next;
      if (this.uploading) this.uploading.bytesUp = this.clientBody.bytes;
      if (r === 'more') return;
      if (r !== 'done') return this.stop(`request body: ${r}`);
      this.requestDone();
    }
  }

  serverToClient(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.server === 'stopped') return;
      if (this.server === 'head') {
        const r = this.serverHead.feed(chunk, off);
        off = this.serverHead.next;
        if (r === 'too_large') return this.stop(`response head exceeds ${this.ctx.maxHeaderBytes} bytes`);
        if (r === 'more') return;
        if (!this.onResponseHead()) return;
        continue;
      }
      const r = this.serverBody.feed(chunk, off);
      off = this.serverBody.next;
      if (this.answering) this.answering.bytesDown = this.serverBody.bytes;
      if (r === 'more') return;
      if (r !== 'done') return this.stop(`response body: ${r}`);
      this.responseDone();
    }
  }

  end(): void {
    if (this.ended) return;
    // RFC 9112 §6.3 rule 8: a response without length ends with the connection.
    if (this.server === 'body' && this.serverBody.mode === 'close' && this.answering) {
      this.emit(this.answering, undefined);
      this.queue.shift();
    }
    this.stop('connection closed before the response completed');
    this.ended = true;
  }

  private onRequestHead(): boolean {
    const head = parseRequestHead(this.clientHead.text());
    if (typeof head === 'string') {
      this.requestHeadFailed(head);
      return false;
    }
    this.clientHead.reset();
    if (this.queue.length >= MAX_PIPELINED_REQUESTS) {
      this.stop(`more than ${MAX_PIPELINED_REQUESTS} requests awaiting responses`);
      return false;
    }
    const ex = this.exchangeFor(head);
    this.queue.push(ex);
    const framing = requestFraming(head);
    if (typeof framing === 'string') {
      this.stop(framing);
      return false;
    }
    this.uploading = ex;
    this.clientBody.start(framing.mode, framing.length);
    this.client = 'body';
    if (framing.mode === 'none') this.requestDone();
    return true;
  }

  private exchangeFor(head: RequestHead): Exchange {
    const isConnect = head.method === 'CONNECT';
    const abs = splitAbsoluteForm(head.target);
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host;
    // §3.2.3: CONNECT's authority-form target is host:port, no path.
    const host = isConnect ? head.target : abs ? abs.authority : head.host;
    const wantsUpgrade = head.upgrade !== null && listHas(head.connection, 'upgrade');
    return {
      method: head.method,
      host: logHost(host, this.ctx.sniHost),
      path: isConnect ? '' : redactTarget(head.target),
      userAgent: logUserAgent(head.userAgent),
      start: this.headStart,
      bytesUp: 0,
      bytesDown: 0,
      status: null,
      holdsClient: isConnect || wantsUpgrade,
      emitted: false,
    };
  }

  private requestDone(): void {
    const ex = this.uploading;
    this.uploading = null;
    // After CONNECT or Upgrade the client's next bytes may be another
    // protocol; they wait until the response says which (RFC 9110 §7.8, §9.3.6).
    this.client = ex && ex.holdsClient && !ex.emitted ? 'hold' : 'head';
  }

  private onResponseHead(): boolean {
    const head = parseResponseHead(this.serverHead.text());
    this.serverHead.reset();
    if (typeof head === 'string') {
      this.stop(head);
      return false;
    }
    const ex = this.queue.length > 0 ? this.queue[0] : null;
    if (head.status === 101) {
      // RFC 9110 §15.2.2: after 101 the connection speaks the new protocol.
      if (ex) {
        ex.status = 101;
        const proto = (head.upgrade ?? '').split(',')[0].trim().toLowerCase();
        this.emit(ex, undefined, proto === '' ? 'unknown' : proto);
        this.queue.shift();
      }
      this.becomeOpaque();
      return false;
    }
    // 1xx other than 101 are interim; the final response follows (§15.2).
    if (head.status < 200) return true;
    if (ex && ex.method === 'CONNECT' && head.status < 300) {
      ex.status = head.status;
      this.emit(ex, undefined, 'tunnel');
      this.queue.shift();
      this.becomeOpaque();
      return false;
    }
    if (ex) ex.status = head.status;
    this.answering = ex;
    const mode = responseFraming(ex ? ex.method : 'GET', head.status, head.transferEncoding, head.contentLength);
    if (typeof mode === 'string') {
      this.stop(mode);
      return false;
    }
    this.serverBody.start(mode.mode, mode.length);
    this.server = 'body';
    if (mode.mode === 'none') this.responseDone();
    return true;
  }

  private responseDone(): void {
    const ex = this.answering;
    this.answering = null;
    this.server = 'head';
    if (!ex) return; // an unsolicited response (e.g. 408 before close)
    this.emit(ex, undefined);
    this.queue.shift();
    if (this.client === 'hold' && ex.holdsClient) this.release();
  }

  private hold(chunk: Buffer): void {
    this.heldBytes += chunk.length;
    if (this.heldBytes > this.ctx.maxHeaderBytes) return this.stop('client sent too much while awaiting an upgrade response');
    keepCopy(this.held, chunk);
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.client = 'head';
    for (const c of held) this.clientToServer(c);
  }

  private becomeOpaque(): void {
    this.stop('connection switched protocols before this response');
  }

  /** A request we cannot parse still gets a record, with what its first line tells. */
  private requestHeadFailed(reason: string): void {
    const line = peekRequestLine(this.clientHead.text());
    this.stop(reason);
    this.ctx.emit({
      type: 'http', protocol: 'http/1.1', method: line ? line.method : '', host: logHost(null, this.ctx.sniHost),
      path: line ? redactTarget(line.target) : '', status: null, bytesUp: 0, bytesDown: 0,
      durationMs: Math.max(0, this.ctx.now() - this.headStart), userAgent: null, error: reason,
    });
  }

  /** Stops parsing both directions; every request still waiting gets a record with `reason`. */
  private stop(reason: string): void {
    this.client = 'stopped';
    this.server = 'stopped';
    this.held = [];
    this.heldBytes = 0;
    for (const ex of this.queue) this.emit(ex, reason);
    this.queue.length = 0;
    this.uploading = null;
    this.answering = null;
  }

  private emit(ex: Exchange, error: string | undefined, upgraded?: string): void {
    if (ex.emitted) return;
    ex.emitted = true;
    const r: HttpRequestRecord = {
      type: 'http', protocol: 'http/1.1', method: ex.method, host: ex.host, path: ex.path, status: ex.status,
      bytesUp: ex.bytesUp, bytesDown: ex.bytesDown, durationMs: Math.max(0, this.ctx.now() - ex.start), userAgent: ex.userAgent,
    };
    if (upgraded !== undefined) r.upgraded = upgraded;
    if (error !== undefined) r.error = error;
    this.ctx.emit(r);
  }
}

interface Framing {
  mode: BodyMode;
  length: number;
}

// RFC 9112 §6.3 rules 3-6 for requests.
function requestFraming(head: RequestHead): Framing | string {
  if (head.transferEncoding !== null) {
    const codings = transferCodings(head.transferEncoding);
    // Rule 4: a request whose final coding is not chunked cannot be framed.
    if (codings[codings.length - 1] !== 'chunked') return 'request Transfer-Encoding does not end in chunked';
    return { mode: 'chunked', length: 0 };
  }
  if (head.contentLength !== null) {
    const n = parseContentLength(head.contentLength);
    if (n === null) return 'invalid request Content-Length';
    return { mode: n === 0 ? 'none' : 'length', length: n };
  }
  return { mode: 'none', length: 0 };
}

// RFC 9112 §6.3 rules 1-8 for responses (1xx, 101 and CONNECT handled by the caller).
function responseFraming(method: string, status: number, te: string | null, cl: string | null): Framing | string {
  if (method === 'HEAD' || status === 204 || status === 304) return { mode: 'none', length: 0 };
  if (te !== null) {
    const codings = transferCodings(te);
    return { mode: codings[codings.length - 1] === 'chunked' ? 'chunked' : 'close', length: 0 };
  }
  if (cl !== null) {
    const n = parseContentLength(cl);
    if (n === null) return 'invalid response Content-Length';
    return { mode: n === 0 ? 'none' : 'length', length: n };
  }
  return { mode: 'close', length: 0 };
}
