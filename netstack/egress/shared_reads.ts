// Reads of upstream sockets into one buffer that all of them share (net's
// `onread` option), instead of a fresh 64 KiB ArrayBuffer per read. At a
// gigabit those buffers were 100 MB of garbage a second, and the major
// collections it drew (about eight a second) ran on the cores that the
// tunnel's clients and the origin need too.
//
// Sharing is safe because a read's callback runs to its end before libuv
// reads again into the buffer, for this socket or any other: whoever keeps
// bytes past the callback copies them.
import { ownCopy } from '../wire/bytes';

const SHARED = Buffer.allocUnsafe(64 * 1024);

/** Given each chunk read, valid only during the call; false stops reads until the socket is resumed. */
export type TransientReader = (chunk: Buffer) => boolean;

export class SharedBufferReads {
  private reader: TransientReader | null = null;
  private early: Buffer[] = [];

  /** For net.connect's `onread`. */
  readonly onread = {
    buffer: SHARED,
    callback: (n: number, buf: Buffer): boolean => this.deliver(buf.subarray(0, n)),
  };

  private deliver(chunk: Buffer): boolean {
    if (this.reader !== null) return this.reader(chunk);
    // Nobody reads yet: keep a copy and stop reading until someone does.
    this.early.push(ownCopy(chunk));
    return false;
  }

  /**
   * Sets the reader and returns the chunks read before it (the caller's own
   * copies). Reads stopped at the first of them: the caller resumes the socket.
   */
  attach(reader: TransientReader): Buffer[] {
    this.reader = reader;
    const early = this.early;
    this.early = [];
    return early;
  }
}

/** A stream that can take a chunk whose memory is reused once the call returns (it copies what it keeps). */
export interface TransientWritable {
  /** Like write(), but copies what it keeps; false asks the caller to wait for 'drain'. */
  writeTransient(chunk: Buffer): boolean;
}

export function takesTransient(stream: object): stream is TransientWritable {
  return typeof (stream as Partial<TransientWritable>).writeTransient === 'function';
}
