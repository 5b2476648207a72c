// HTTP/1.1 message body framing (RFC 9112 §6, §7.1). Body bytes are only
// counted: a length-delimited or chunk-data run is skipped by arithmetic, so
// the cost per chunk is O(1) beyond the chunk-size lines and trailers.
import { HeadReader } from './h1_head';

const CR = 0x0d;
const LF = 0x0a;
/** 13 hex digits stay below 2^53, where Number counts exactly. */
const MAX_CHUNK_SIZE_DIGITS = 13;

export type BodyMode = 'none' | 'length' | 'chunked' | 'close';

const enum Chunked {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailers,
}

export type BodyResult = 'more' | 'done' | string;

export class BodyReader {
  mode: BodyMode = 'none';
  /** Payload bytes seen (chunk framing excluded). */
  bytes = 0;
  /** Offset just past the body in the last chunk fed, when done. */
  next = 0;
  private remaining = 0;
  private state = Chunked.Size;
  private digits = 0;
  private extBytes = 0;
  private readonly trailers: HeadReader;

  constructor(private readonly maxLineBytes: number) {
    this.trailers = new HeadReader(maxLineBytes, true);
  }

  start(mode: BodyMode, length = 0): void {
    this.mode = mode;
    this.bytes = 0;
    this.remaining = length;
    this.state = Chunked.Size;
    this.digits = 0;
    this.extBytes = 0;
  }

  /** Consumes body bytes from chunk[off..]; an error is a fixed description. */
  feed(chunk: Buffer, off: number): BodyResult {
    if (this.mode === 'close') {
      this.bytes += chunk.length - off;
      this.next = chunk.length;
      return 'more';
    }
    if (this.mode === 'length') {
      const take = Math.min(this.remaining, chunk.length - off);
      this.remaining -= take;
      this.bytes += take;
      this.next = off + take;
      return this.remaining === 0 ? 'done' : 'more';
    }
    if (this.mode === 'none') {
      this.next = off;
      return 'done';
    }
    return this.feedChunked(chunk, off);
  }

  private feedChunked(chunk: Buffer, off: number): BodyResult {
    const end = chunk.length;
    while (off < end) {
      switch (this.state) {
        case Chunked.Data: {
          const take = Math.min(this.remaining, end - off);
          this.remaining -= take;
          this.bytes += take;
          off += take;
          if (this.remaining === 0) this.state = Chunked.DataCr;
          break;
        }
        case Chunked.Size: {
          const c = chunk[off++];
          const d = hexValue(c);
          if (d >= 0) {
            if (++this.digits > MAX_CHUNK_SIZE_DIGITS) return 'chunk size too large';
            this.remaining = this.remaining * 16 + d;
          } else if (this.digits === 0) {
            return 'malformed chunk size';
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = Chunked.Ext; // chunk-ext, RFC 9112 §7.1.1: ignored
          } else if (c === CR) {
            this.state = Chunked.SizeLf;
          } else if (c === LF) {
            this.endSizeLine();
          } else {
            return 'malformed chunk size';
          }
          break;
        }
        case Chunked.Ext: {
          const c = chunk[off++];
          if (c === LF) this.endSizeLine();
          else if (c === CR) this.state = Chunked.SizeLf;
          else if (++this.extBytes > this.maxLineBytes) return 'chunk extension too long';
          break;
        }
        case Chunked.SizeLf:
          if (chunk[off++] !== LF) return 'malformed chunk size line';
          this.endSizeLine();
          break;
        case Chunked.DataCr: {
          const c = chunk[off++];
          if (c === CR) this.state = Chunked.DataLf;
          else if (c === LF) this.state = Chunked.Size;
          else return 'chunk data longer than its size';
          break;
        }
        case Chunked.DataLf:
          if (chunk[off++] !== LF) return 'chunk data longer than its size';
          this.state = Chunked.Size;
          break;
        case Chunked.Trailers: {
          const r = this.trailers.feed(chunk, off);
          if (r === 'too_large') return 'trailer section too large';
          off = this.trailers.next;
          if (r === 'done') {
            this.next = off;
            return 'done';
          }
          break;
        }
      }
    }
    this.next = off;
    return 'more';
  }

  private endSizeLine(): void {
    this.digits = 0;
    this.extBytes = 0;
    if (this.remaining === 0) {
      this.state = Chunked.Trailers;
      this.trailers.reset();
    } else {
      this.state = Chunked.Data;
    }
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
