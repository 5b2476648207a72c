// Per-user records: DATA_DIR/logs/<user>.ndjson, one JSON object per line,
// written through pino (one destination per user, opened lazily, a bounded
// number kept open). These files go to auditors and SIEMs, so the writer
// itself strips credential-bearing keys anywhere in a record: the HTTP logger
// is never supposed to send them, and this is the second line of defence.

import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';

/** Keys whose values are credentials or session secrets; matched case-insensitively at any depth. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'password', 'passwd', 'secret', 'token',
]);

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
export const DEFAULT_MAX_OPEN = 64;
/** Records are small; anything deeper than this is not a record we produce. */
const MAX_DEPTH = 8;
/** File systems limit names to 255 bytes; the encoded name plus ".ndjson" must fit. */
const MAX_ENCODED_NAME = 200;

export class UserLogError extends Error {}

/**
 * A user name as a file name: [A-Za-z0-9_@-] and inner dots kept, every other
 * byte (including '/', NUL and a leading dot) written as %XX, so the mapping is
 * injective and no name can leave the logs directory or hide as a dotfile.
 */
export function userFileName(user: string): string {
  if (user.length === 0) throw new UserLogError('user name is empty; cannot name its log file');
  let out = '';
  for (const byte of Buffer.from(user, 'utf8')) {
    const c = String.fromCharCode(byte);
    const safe = /[A-Za-z0-9_@-]/.test(c) || (c === '.' && out.length > 0);
    out += safe ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > MAX_ENCODED_NAME) throw new UserLogError(`user name "${user.slice(0, 40)}..." is too long for a log file name`);
  return `${out}.ndjson`;
}

export type LogFields = Record<string, unknown>;

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
  /** Clock for the `time` field; Date.now by default. */
  now?: () => number;
}

interface OpenLog {
  logger: pino.Logger;
  dest: ReturnType<typeof pino.destination>;
}

export class UserLog {
  readonly dir: string;
  private readonly open = new Map<string, OpenLog>();
  private readonly maxOpen: number;
  private readonly now: () => number;
  private readonly closing = new Set<Promise<void>>();
  /** Secret keys removed from records; non-zero means a caller tried to log one. */
  secretsDropped = 0;
  writeErrors = 0;

  constructor(opts: UserLogOptions) {
    this.dir = join(opts.dataDir, 'logs');
    this.maxOpen = opts.maxOpen ?? DEFAULT_MAX_OPEN;
    this.now = opts.now ?? Date.now;
    if (!Number.isInteger(this.maxOpen) || this.maxOpen < 1) throw new UserLogError(`maxOpen must be a positive integer, got ${this.maxOpen}`);
  }

  /** Path of a user's record file (it may not exist yet). */
  pathFor(user: string): string {
    return join(this.dir, userFileName(user));
  }

  /** Appends one record. `type`, `time`, `user` and `peer` cannot be overridden by fields. Never throws. */
  write(user: string, peer: string, type: string, fields: LogFields = {}): void {
    try {
      const dropped = { n: 0 };
      const clean = stripSecrets(fields, dropped) as LogFields;
      this.secretsDropped += dropped.n;
      delete clean.time;
      delete clean.level;
      this.destination(user).logger.info({ ...clean, type, user, peer });
    } catch {
      this.writeErrors++;
    }
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Flushes and closes every destination; resolves when the files are closed. */
  async close(): Promise<void> {
    for (const user of [...this.open.keys()]) this.evict(user);
    await Promise.all([...this.closing]);
  }

  private destination(user: string): OpenLog {
    const hit = this.open.get(user);
    if (hit) {
      this.open.delete(user);
      this.open.set(user, hit);
      return hit;
    }
    mkdirSync(this.dir, { recursive: true, mode: DIR_MODE });
    // The fd is opened here so its mode is ours even if the file pre-existed with a looser one.
    const fd = openSync(this.pathFor(user), 'a', FILE_MODE);
    try {
      fchmodSync(fd, FILE_MODE);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const dest = pino.destination({ fd, sync: false, minLength: 0 });
    dest.on('error', () => this.writeErrors++);
    const now = this.now;
    // pino 10 emits broken JSON ("{,") when the level formatter returns nothing, so the level stays, as a word.
    const logger = pino({
      base: null,
      messageKey: 'message',
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    }, dest);
    const entry = { logger, dest };
    this.open.set(user, entry);
    while (this.open.size > this.maxOpen) {
      const oldest = this.open.keys().next().value;
      if (oldest === undefined) break;
      this.evict(oldest);
    }
    return entry;
  }

  private evict(user: string): void {
    const entry = this.open.get(user);
    if (!entry) return;
    this.open.delete(user);
    const done = new Promise<void>((resolve) => {
      entry.dest.once('close', () => resolve());
      entry.dest.once('error', () => resolve());
      entry.dest.end();
    });
    this.closing.add(done);
    void done.then(() => this.closing.delete(done));
  }
}
