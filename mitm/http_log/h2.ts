// HTTP/2 connection parser for logs (RFC 9113). Both directions are framed
// and every header block is HPACK-decoded in order (one decoder per
// direction); one record per stream when the server ends it, or with an
// error on RST_STREAM, GOAWAY, connection end or a protocol violation.
// Pushed responses (PUSH_PROMISE, §8.4) are logged as requests of their own,
// with the promised (even) stream id.
import { HeaderField, HpackDecoder } from './hpack';
import {
  CONTINUATION, DATA, errorCodeName, FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY,
  FrameSink, GOAWAY, H2FrameReader, HEADERS, PING, PRIORITY, PUSH_PROMISE, RST_STREAM, SETTINGS, WINDOW_UPDATE,
} from './h2_frames';
import type { ParserContext } from './h1';
import { HttpRequestRecord, keepCopy, logHost, logUserAgent, redactTarget } from './record';
import type { RelayTap } from '../../netstack';

/** Streams tracked at once; servers commonly allow 100-250 (SETTINGS_MAX_CONCURRENT_STREAMS). */
export const MAX_TRACKED_STREAMS = 256;
const SETTINGS_HEADER_TABLE_SIZE = 0x1;
/** Room for pad length, padding and priority fields around a header block fragment. */
const FRAME_OVERHEAD = 1 + 255 + 5 + 4;

interface H2Stream {
  id: number;
  method: string;
  host: string;
  path: string;
  userAgent: string | null;
  protocol: string | null;
  start: number;
  status: number | null;
  bytesUp: number;
  bytesDown: number;
}

type Block = { streamId: number; flags: number; promisedId: number; kind: 'headers' | 'push' };

/** Per-direction state: the frame reader, its HPACK decoder and a header block in progress. */
class Direction implements FrameSink {
  readonly reader: H2FrameReader;
  readonly decoder = new HpackDecoder();
  block: Block | null = null;
  fragments: Buffer[] = [];
  blockBytes = 0;

  constructor(private readonly conn: H2Connection, readonly fromClient: boolean, maxKeep: number) {
    this.reader = new H2FrameReader(this, fromClient, maxKeep);
  }

  onFrame(type: number, flags: number, streamId: number, length: number, payload: Buffer): string | null {
    return this.conn.onFrame(this, type, flags, streamId, length, payload);
  }
}

export class H2Connection implements RelayTap {
  private readonly client: Direction;
  private readonly server: Direction;
  private readonly streams = new Map<number, H2Stream>();
  private lastClientStream = 0;
  private stopped = false;

  constructor(private readonly ctx: ParserContext) {
    this.client = new Direction(this, true, ctx.maxHeaderBytes + FRAME_OVERHEAD);
    this.server = new Direction(this, false, ctx.maxHeaderBytes + FRAME_OVERHEAD);
  }

  clientToServer(chunk: Buffer): void {
    if (this.stopped) return;
    const v = this.client.reader.feed(chunk);
    if (v) this.stop(`client: ${v}`);
  }

  serverToClient(chunk: Buffer): void {
    if (this.stopped) return;
    const v = this.server.reader.feed(chunk);
    if (v) this.stop(`server: ${v}`);
  }

  end(): void {
    this.stop('connection closed before the response completed');
  }

  onFrame(d: Direction, type: number, flags: number, sid: number, length: number, p: Buffer): string | null {
    if (this.stopped) return null;
    // §6.10: a header block is contiguous; any other frame in between is a violation.
    if (d.block !== null && type !== CONTINUATION) return 'expected CONTINUATION';
    switch (type) {
      case DATA: {
        if (sid === 0) return 'DATA on stream 0';
        const pad = flags & FLAG_PADDED ? p[0] + 1 : 0;
        const n = length - pad;
        if (n < 0) return 'DATA padding exceeds the frame';
        const s = this.streams.get(sid);
        if (s && d.fromClient) s.bytesUp += n;
        else if (s) {
          s.bytesDown += n;
          if (flags & FLAG_END_STREAM) this.finish(s);
        }
        return null;
      }
      case HEADERS:
      case PUSH_PROMISE: {
        if (sid === 0) return `frame type ${type} on stream 0`;
        if (type === PUSH_PROMISE && d.fromClient) return 'PUSH_PROMISE from the client';
        let off = 0;
        let pad = 0;
        if (flags & FLAG_PADDED) {
          if (p.length < 1) return 'padded frame without a pad length';
          pad = p[0];
          off = 1;
        }
        let promisedId = 0;
        if (type === HEADERS && flags & FLAG_PRIORITY) off += 5;
        if (type === PUSH_PROMISE) {
          if (off + 4 > p.length) return 'PUSH_PROMISE too short';
          promisedId = p.readUInt32BE(off) & 0x7fffffff;
          off += 4;
        }
        if (off + pad > p.length) return 'padding exceeds the frame';
        d.block = { streamId: sid, flags, promisedId, kind: type === HEADERS ? 'headers' : 'push' };
        d.fragments = [];
        d.blockBytes = 0;
        return this.appendFragment(d, p.subarray(off, p.length - pad), flags);
      }
      case CONTINUATION:
        if (d.block === null || d.block.streamId !== sid) return 'unexpected CONTINUATION';
        return this.appendFragment(d, p, flags);
      case RST_STREAM: {
        if (sid === 0) return 'RST_STREAM on stream 0';
        const s = this.streams.get(sid);
        if (s) this.finish(s, `stream reset by ${d.fromClient ? 'client' : 'server'}: ${errorCodeName(p.readUInt32BE(0))}`);
        return null;
      }
      case SETTINGS:
        return this.onSettings(d, flags, sid, p);
      case GOAWAY:
        if (sid !== 0) return 'GOAWAY on a stream';
        this.onGoaway(d, p.readUInt32BE(0) & 0x7fffffff, p.readUInt32BE(4));
        return null;
      case PING:
        return sid === 0 ? null : 'PING on a stream';
      case PRIORITY:
        return sid === 0 ? 'PRIORITY on stream 0' : null;
      case WINDOW_UPDATE:
        return null;
      default:
        return null;
    }
  }

  private appendFragment(d: Direction, fragment: Buffer, flags: number): string | null {
    d.blockBytes += fragment.length;
    if (d.blockBytes > this.ctx.maxHeaderBytes) return `header block exceeds ${this.ctx.maxHeaderBytes} bytes`;
    // The reader reuses its buffer for the next frame.
    keepCopy(d.fragments, fragment);
    if ((flags & FLAG_END_HEADERS) === 0) return null;
    const block = d.block as Block;
    d.block = null;
    const bytes = d.fragments.length === 1 ? d.fragments[0] : Buffer.concat(d.fragments);
    d.fragments = [];
    const fields = d.decoder.decode(bytes);
    if (!Array.isArray(fields)) return `COMPRESSION_ERROR: ${fields.reason}`;
    return this.onHeaderBlock(d, block, fields);
  }

  private onHeaderBlock(d: Direction, b: Block, fields: HeaderField[]): string | null {
    if (b.kind === 'push') {
      if (b.promisedId === 0 || b.promisedId % 2 !== 0) return 'PUSH_PROMISE with an invalid promised stream';
      this.open(b.promisedId, fields);
      return null;
    }
    const s = this.streams.get(b.streamId);
    if (d.fromClient) {
      if (s) return null; // trailers (§8.1)
      if (b.streamId % 2 === 0) return 'client opened an even-numbered stream';
      // §5.1.1: new stream ids increase; a lower one is a closed stream's trailers.
      if (b.streamId <= this.lastClientStream) return null;
      this.lastClientStream = b.streamId;
      this.open(b.streamId, fields);
      return null;
    }
    if (!s) return null;
    const status = fieldValue(fields, ':status');
    const code = status !== null && /^\d{3}$/.test(status) ? Number(status) : null;
    // §8.1: 1xx responses are interim; trailers carry no :status.
    if (code !== null && code >= 200) s.status = code;
    if (code !== null && code >= 200 && code < 300 && s.method === 'CONNECT') {
      // RFC 9113 §8.5 / RFC 8441: the stream is now a tunnel; its bytes are opaque.
      this.finish(s, undefined, s.protocol ?? 'tunnel');
      return null;
    }
    if (b.flags & FLAG_END_STREAM) this.finish(s);
    return null;
  }

  private open(id: number, fields: HeaderField[]): void {
    let method = '';
    let authority: string | null = null;
    let host: string | null = null;
    let path: string | null = null;
    let protocol: string | null = null;
    let ua: string | null = null;
    for (const [name, value] of fields) {
      if (name === ':method') method = value;
      else if (name === ':authority') authority = value;
      else if (name === ':path') path = value;
      else if (name === ':protocol') protocol = value.toLowerCase();
      else if (name === 'host') host = value;
      else if (name === 'user-agent') ua = ua === null ? value : ua;
    }
    const s: H2Stream = {
      id, method, host: logHost(authority ?? host, this.ctx.sniHost), path: path === null ? '' : redactTarget(path),
      userAgent: logUserAgent(ua), protocol, start: this.ctx.now(), status: null, bytesUp: 0, bytesDown: 0,
    };
    if (this.streams.size >= MAX_TRACKED_STREAMS) {
      this.emit(s, `not tracked: more than ${MAX_TRACKED_STREAMS} concurrent streams`);
      return;
    }
    this.streams.set(id, s);
  }

  private onSettings(d: Direction, flags: number, sid: number, p: Buffer): string | null {
    if (sid !== 0) return 'SETTINGS on a stream';
    if (flags & FLAG_ACK) return p.length === 0 ? null : 'FRAME_SIZE_ERROR: SETTINGS ACK with a payload';
    for (let i = 0; i + 6 <= p.length; i += 6) {
      // §6.5.2: the sender's decoder limit bounds the peer's encoder.
      if (p.readUInt16BE(i) === SETTINGS_HEADER_TABLE_SIZE) (d.fromClient ? this.server : this.client).decoder.setAllowedTableSize(p.readUInt32BE(i + 2));
    }
    return null;
  }

  // §6.8: streams above last-stream-id, opened by the GOAWAY's receiver, were not processed.
  private onGoaway(d: Direction, lastStreamId: number, code: number): void {
    const receiverParity = d.fromClient ? 0 : 1;
    for (const s of [...this.streams.values()]) {
      if (s.id % 2 === receiverParity && s.id > lastStreamId) {
        this.finish(s, `not processed: GOAWAY from ${d.fromClient ? 'client' : 'server'} (${errorCodeName(code)})`);
      }
    }
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of [...this.streams.values()]) this.finish(s, reason);
  }

  private finish(s: H2Stream, error?: string, upgraded?: string): void {
    this.streams.delete(s.id);
    this.emit(s, error, upgraded);
  }

  private emit(s: H2Stream, error?: string, upgraded?: string): void {
    const r: HttpRequestRecord = {
      type: 'http', protocol: 'h2', method: s.method, host: s.host, path: s.path, status: s.status, bytesUp: s.bytesUp,
      bytesDown: s.bytesDown, durationMs: Math.max(0, this.ctx.now() - s.start), userAgent: s.userAgent, streamId: s.id,
    };
    if (upgraded !== undefined) r.upgraded = upgraded;
    if (error !== undefined) r.error = error;
    this.ctx.emit(r);
  }
}

function fieldValue(fields: HeaderField[], name: string): string | null {
  for (const [n, v] of fields) if (n === name) return v;
  return null;
}
