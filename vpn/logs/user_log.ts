// Per-user records: DATA_DIR/logs/<user>.ndjson, one JSON object per line
// (schema: docs/log-schema.json), serialised by pino and written through a
// rotating file per user (user_file.ts), opened lazily, a bounded number
// kept open. These files go to auditors and SIEMs, so the writer itself
// strips credential-bearing keys anywhere in a record: the HTTP logger is
// never supposed to send them, and this is the second line of defence.
import { appendFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { encodeUser, userFileName, UserLogError } from './files';
import { sweepExpired } from './retention';
import { UserFile, type RotationOptions } from './user_file';

export { userFileName, UserLogError } from './files';

/** Keys whose values are credentials or session secrets; matched case-insensitively at any depth. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'password', 'passwd', 'secret', 'token',
]);

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** Open log files at most (one fd each); beyond this the least recently written is closed. */
export const DEFAULT_MAX_OPEN = 256;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_RETENTION_DAYS = 30;
const SWEEP_EVERY_MS = 60 * 60 * 1000;
const CHUNK_BYTES = 64 * 1024;
/** Records are small; anything deeper than this is not a record we produce. */
const MAX_DEPTH = 8;

export type LogFields = Record<string, unknown>;

/** A record as written, for observers (the portal's recent decisions, metrics). */
export interface WrittenRecord {
  type: string;
  time: number;
  user: string;
  peer: string;
  device: string | null;
  fields: LogFields;
}

/** A copy of `value` without secret keys; counts what was dropped. */
export function stripSecrets(value: unknown, dropped: { n: number }, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) {
    dropped.n++;
    return '[too deep]';
  }
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, dropped, depth + 1));
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEYS.has(k.toLowerCase())) {
      dropped.n++;
      continue;
    }
    out[k] = stripSecrets(v, dropped, depth + 1);
  }
  return out;
}

export interface UserLogOptions {
  dataDir: string;
  maxOpen?: number;
  /** `log.rotate.maxBytes`: a file is rotated once it reaches this size. */
  maxBytes?: number;
  /** `log.retentionDays`: rotated files older than this are deleted (hourly sweep). */
  retentionDays?: number;
  /** Clock for the `time` field; Date.now by default. */
  now?: () => number;
  /** The device name of a peer (public key), for records whose writer does not name it. */
  deviceOf?: (peer: string) => string | undefined;
  /** Rotation period; UTC days ('1d') except in tests. */
  rotateInterval?: string;
}

export class UserLog {
  readonly dir: string;
  private readonly open = new Map<string, UserFile>();
  /** Lines accepted this event-loop turn, per user: one write per user per turn, whatever the count. */
  private readonly pending = new Map<string, { chunk: string; records: number }>();
  private flushScheduled = false;
  private readonly maxOpen: number;
  private readonly rotation: RotationOptions;
  private readonly retentionDays: number;
  private readonly now: () => number;
  /** Files being closed, by user: a user's next file starts only once the last one closed. */
  private readonly closing = new Map<string, Promise<void>>();
  private readonly observers: Array<(r: WrittenRecord) => void> = [];
  private readonly serializer: pino.Logger;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Where the serializer's next line goes (set around each synchronous pino call). */
  private target: ((line: string) => void) | null = null;
  private closed = false;
  /** Secret keys removed from records; non-zero means a caller tried to log one. */
  secretsDropped = 0;
  writeErrors = 0;
  /** Records not written because their file's queue was full or its stream failed. */
  recordsDropped = 0;
  recordsWritten = 0;

  constructor(private readonly opts: UserLogOptions) {
    this.dir = join(opts.dataDir, 'logs');
    this.maxOpen = opts.maxOpen ?? DEFAULT_MAX_OPEN;
    this.now = opts.now ?? Date.now;
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
    this.rotation = { maxBytes: opts.maxBytes ?? DEFAULT_MAX_BYTES, interval: opts.rotateInterval ?? '1d' };
    if (!Number.isInteger(this.maxOpen) || this.maxOpen < 1) throw new UserLogError(`maxOpen must be a positive integer, got ${this.maxOpen}`);
    const now = this.now;
    // One serializer for every user: pino calls the destination synchronously, so `target` routes each line.
    // pino 10 emits broken JSON ("{,") when the level formatter returns nothing, so the level stays, as a word.
    this.serializer = pino({
      base: null,
      messageKey: 'message',
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    }, { write: (line: string) => this.target?.(line) });
  }

  /** Path of a user's current record file (it may not exist yet). */
  pathFor(user: string): string {
    return join(this.dir, userFileName(user));
  }

  /** Told about every record written (after secrets were stripped). */
  observe(fn: (r: WrittenRecord) => void): void {
    this.observers.push(fn);
  }

  /**
   * Appends one record. `type`, `time`, `user`, `peer` and `device` cannot be
   * overridden by fields; `device` is the writer's or the peer's. Never throws.
   */
  write(user: string, peer: string, type: string, fields: LogFields = {}, device?: string): void {
    try {
      const dropped = { n: 0 };
      const clean = stripSecrets(fields, dropped) as LogFields;
      this.secretsDropped += dropped.n;
      delete clean.time;
      delete clean.level;
      delete clean.device;
      const dev = device ?? this.opts.deviceOf?.(peer) ?? null;
      const time = this.now();
      let line = '';
      this.target = (l) => (line = l);
      try {
        this.serializer.info({ ...clean, type, user, peer, device: dev });
      } finally {
        this.target = null;
      }
      this.append(user, line);
      this.recordsWritten++;
      for (const fn of this.observers) fn({ type, time, user, peer, device: dev, fields: clean });
    } catch {
      this.writeErrors++;
    }
  }

  /** Appends a record that names its own user, peer and type (the stack's `flow` and `flow_refused`). Never throws. */
  writeRecord(r: { type: string; user: string; peer: string }): void {
    const { type, user, peer, ...fields } = r;
    this.write(user, peer, type, fields);
  }

  private append(user: string, line: string): void {
    if (this.closed) {
      // After close() began (a flow ending during shutdown): written at once, so nothing accepted is lost.
      this.ensureDir();
      appendFileSync(this.pathFor(user), line, { mode: FILE_MODE });
      return;
    }
    const p = this.pending.get(user);
    if (p === undefined) {
      // Checked here, so a name that cannot be a file fails this write, not the whole turn's flush.
      encodeUser(user);
      this.pending.set(user, { chunk: line, records: 1 });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushPending());
      }
      return;
    }
    p.chunk += line;
    p.records++;
    // Files overshoot log.rotate.maxBytes by at most one chunk.
    if (p.chunk.length >= CHUNK_BYTES) {
      this.pending.delete(user);
      this.file(user).write(p.chunk, p.records);
    }
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Deletes files past `log.retentionDays`; also run hourly while files are being written. */
  sweep(now = this.now()): number {
    return sweepExpired(this.dir, now, this.retentionDays, new Set([...this.open.values()].map((f) => f.encodedUser)));
  }

  /** Flushes and closes every file; resolves when they are closed. Later writes are appended synchronously. */
  async close(): Promise<void> {
    // Records of flows torn down just before (their endings are asynchronous) get one more turn.
    await new Promise((resolve) => setImmediate(resolve));
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.flushPending();
    for (const user of [...this.open.keys()]) this.evict(user);
    await Promise.all([...this.closing.values()]);
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: DIR_MODE });
    chmodSync(this.dir, DIR_MODE);
  }

  private file(user: string): UserFile {
    const hit = this.open.get(user);
    if (hit && !hit.failed) {
      this.open.delete(user);
      this.open.set(user, hit);
      return hit;
    }
    if (hit) this.evict(user);
    if (this.open.size === 0 && this.sweepTimer === null) this.startSweeping();
    this.ensureDir();
    const f = new UserFile(this.dir, encodeUser(user), this.rotation, {
      onError: () => this.writeErrors++,
      onDropped: (n) => (this.recordsDropped += n),
    }, this.closing.get(user));
    this.open.set(user, f);
    while (this.open.size > this.maxOpen) {
      const oldest = this.open.keys().next().value;
      if (oldest === undefined) break;
      this.evict(oldest);
    }
    return f;
  }

  private startSweeping(): void {
    try {
      this.sweep();
    } catch {
      this.writeErrors++;
    }
    this.sweepTimer = setInterval(() => {
      try {
        this.sweep();
      } catch {
        this.writeErrors++;
      }
    }, SWEEP_EVERY_MS);
    this.sweepTimer.unref();
  }

  private flushPending(): void {
    this.flushScheduled = false;
    for (const [user, p] of this.pending) {
      try {
        this.file(user).write(p.chunk, p.records);
      } catch {
        this.writeErrors++;
        this.recordsDropped += p.records;
      }
    }
    this.pending.clear();
  }

  private evict(user: string): void {
    const f = this.open.get(user);
    if (!f) return;
    this.open.delete(user);
    const done = f.close();
    this.closing.set(user, done);
    // close() never rejects (a failed stream resolves too); the second handler only satisfies the type.
    const forget = (): void => {
      if (this.closing.get(user) === done) this.closing.delete(user);
    };
    done.then(forget, forget);
  }
}
