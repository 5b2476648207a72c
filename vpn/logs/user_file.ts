// One user's open log file: chunks of lines (coalesced by the writer, one
// per user per event-loop turn) go to rotating-file-stream, which appends
// them and rotates the file by size and at each UTC day. The rotation itself
// is the library's; this file only names the rotated files (files.ts) and
// keeps the modes private.
import { chmod, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import { ARCHIVE_DIR, archiveName, LOG_EXT } from './files';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/**
 * Bytes queued toward the disk for one file beyond which records are dropped
 * and counted: a stalled disk must not grow the concentrator without bound.
 */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

export interface RotationOptions {
  maxBytes: number;
  /** rotating-file-stream interval; '1d' (UTC days) outside tests. */
  interval: string;
}

export interface UserFileEvents {
  onError(err: Error): void;
  onDropped(records: number): void;
}

export class UserFile {
  /** Null until the user's previous file (evicted a moment ago) has closed: two writers never share a file. */
  private stream: RotatingFileStream | null = null;
  private readonly started: Promise<void>;
  /** Chunks given before the stream started (the user's previous file still closing). */
  private waiting: Array<{ chunk: string; records: number }> = [];
  private closed: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    readonly encodedUser: string,
    private readonly rotation: RotationOptions,
    private readonly events: UserFileEvents,
    previous?: Promise<void>,
  ) {
    if (previous === undefined) {
      this.start();
      this.started = Promise.resolve();
    } else {
      this.started = previous.then(() => {
        this.start();
        for (const w of this.waiting.splice(0)) this.write(w.chunk, w.records);
      });
    }
  }

  private start(): void {
    const { encodedUser, rotation } = this;
    const stream = createStream((time: number | Date | null, index?: number) =>
      (time === null ? `${encodedUser}${LOG_EXT}` : archiveName(encodedUser, new Date(time), index ?? 1)), {
      path: this.dir,
      size: `${rotation.maxBytes}B`,
      interval: rotation.interval,
      intervalUTC: true,
      // Rotated files are named for the period their records belong to, and a
      // file left from an earlier period is rotated when it is opened again.
      intervalBoundary: true,
      initialRotation: true,
      mode: FILE_MODE,
    });
    // A file that existed with a looser mode is made private when opened.
    stream.on('open', (file) => chmod(file, FILE_MODE, () => undefined));
    // Made here, private, before the library would make it with the umask's mode.
    stream.on('rotation', () => mkdirSync(join(this.dir, ARCHIVE_DIR, encodedUser), { recursive: true, mode: DIR_MODE }));
    stream.on('error', (err) => this.events.onError(err));
    stream.on('warning', (err) => this.events.onError(err));
    this.stream = stream;
  }

  get failed(): boolean {
    return this.stream !== null && this.stream.destroyed && this.closed === null;
  }

  /** Hands a chunk of whole lines to the stream (written in order, asynchronously). */
  write(chunk: string, records: number): void {
    const stream = this.stream;
    if (stream === null) {
      this.waiting.push({ chunk, records });
      return;
    }
    if (stream.destroyed || stream.writableEnded || stream.writableLength > MAX_QUEUED_BYTES) {
      this.events.onDropped(records);
      return;
    }
    stream.write(chunk);
  }

  /** Ends the stream after what it was given; resolves once the file is closed (or failed). */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closed = this.started.then(() => new Promise<void>((resolve) => {
      const stream = this.stream;
      if (stream === null || stream.destroyed) return resolve();
      stream.once('close', () => resolve());
      stream.once('error', () => resolve());
      stream.end();
    }));
    return this.closed;
  }
}
