// Where a user's records live: DATA_DIR/logs/<user>.ndjson is the file being
// written (a stable path for `tail -f` and SIEM agents), and rotated files
// move to DATA_DIR/logs/archive/<user>/<period>.<n>.ndjson, named by the
// UTC period they belong to so that names sort in time order. `archive` can
// never be a user's file: those all end in `.ndjson`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ARCHIVE_DIR = 'archive';
export const LOG_EXT = '.ndjson';
/** File systems limit names to 255 bytes; the encoded name plus ".ndjson" must fit. */
const MAX_ENCODED_NAME = 200;

export class UserLogError extends Error {}

/**
 * A user name as a file name: [A-Za-z0-9_@-] and inner dots kept, every other
 * byte (including '/', NUL and a leading dot) written as %XX, so the mapping is
 * injective and no name can leave the logs directory or hide as a dotfile.
 */
export function encodeUser(user: string): string {
  if (user.length === 0) throw new UserLogError('user name is empty; cannot name its log file');
  let out = '';
  for (const byte of Buffer.from(user, 'utf8')) {
    const c = String.fromCharCode(byte);
    const safe = /[A-Za-z0-9_@-]/.test(c) || (c === '.' && out.length > 0);
    out += safe ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > MAX_ENCODED_NAME) throw new UserLogError(`user name "${user.slice(0, 40)}..." is too long for a log file name`);
  return out;
}

export function userFileName(user: string): string {
  return `${encodeUser(user)}${LOG_EXT}`;
}

/** 2026-12-01T000000Z: an ISO 8601 basic-format UTC time, safe in file names and sortable. */
export function periodStamp(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '');
}

/** The rotated file name for a period start and a sequence number within it. */
export function archiveName(encodedUser: string, periodStart: Date, index: number): string {
  return join(ARCHIVE_DIR, encodedUser, `${periodStamp(periodStart)}.${String(index).padStart(3, '0')}${LOG_EXT}`);
}

const ARCHIVE_RE = /^(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})Z\.(\d+)\.ndjson$/;

/** The period start (ms) of a rotated file's name, or null for a name we did not write. */
export function archivePeriod(name: string): number | null {
  const m = ARCHIVE_RE.exec(name);
  if (!m) return null;
  const t = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`);
  return Number.isNaN(t) ? null : t;
}

export interface LogFile {
  path: string;
  /** The file being written (last in time order). */
  current: boolean;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** A user's files, oldest first: rotated ones by name (period, then sequence), then the current one. */
export function userLogFiles(logsDir: string, user: string): LogFile[] {
  const encoded = encodeUser(user);
  const out: LogFile[] = [];
  const archive = join(logsDir, ARCHIVE_DIR, encoded);
  let names: string[] = [];
  try {
    names = readdirSync(archive).filter((n) => archivePeriod(n) !== null);
  } catch {
    // No rotation yet.
  }
  // Zero-padded sequence numbers up to 999 sort as text; wider ones by value.
  names.sort((a, b) => {
    const [pa, na] = a.split('.');
    const [pb, nb] = b.split('.');
    return pa === pb ? Number(na) - Number(nb) : pa < pb ? -1 : 1;
  });
  for (const n of names) {
    const st = statOrNull(join(archive, n));
    if (st) out.push({ path: join(archive, n), current: false, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
  }
  const cur = join(logsDir, `${encoded}${LOG_EXT}`);
  const st = statOrNull(cur);
  if (st) out.push({ path: cur, current: true, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
  return out;
}

function statOrNull(path: string): { size: number; mtimeMs: number; ino: number } | null {
  try {
    const st = statSync(path);
    return st.isFile() ? st : null;
  } catch {
    return null;
  }
}
