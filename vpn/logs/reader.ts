// Reads a user's records back, oldest first, across rotated files: files
// wholly outside --since/--until are skipped by their first and last records,
// a file that starts before --since is entered by binary search on the
// record times (files are written in time order), and everything is streamed
// (a 1 GB file is never held in memory). Filters run on the raw line first;
// only candidate lines are parsed.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { userLogFiles, type LogFile } from './files';

export interface LogQuery {
  /** ISO 8601 (UTC, as written) bounds, inclusive. */
  since?: string;
  until?: string;
  types?: ReadonlySet<string>;
  /** Case-insensitive text the record's JSON must contain. */
  grep?: string;
}

export interface LogLine {
  /** The record exactly as written (no newline). */
  line: string;
  record: Record<string, unknown>;
}

const TIME_KEY = '"time":"';
const ISO_LEN = 24;
const PROBE_BYTES = 16 * 1024;
/** Below this span the binary search stops and the stream scans. */
const SEARCH_GRAIN = 64 * 1024;
const READ_CHUNK = 1024 * 1024;

/** The `time` of a record line without parsing it (pino writes it near the start), or null. */
export function lineTime(line: string): string | null {
  const i = line.indexOf(TIME_KEY);
  if (i < 0 || i > 64) return null;
  return line.slice(i + TIME_KEY.length, i + TIME_KEY.length + ISO_LEN);
}

/** The time of the first complete record at or after `offset`, and where its line starts. */
function firstTimeFrom(fd: number, offset: number, size: number): { time: string; start: number } | null {
  const buf = Buffer.alloc(PROBE_BYTES);
  let pos = offset;
  let skipPartial = offset > 0;
  while (pos < size) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n <= 0) return null;
    const chunk = buf.subarray(0, n);
    let lineStart = 0;
    if (skipPartial) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        pos += n;
        continue;
      }
      lineStart = nl + 1;
      skipPartial = false;
    }
    const end = chunk.indexOf(10, lineStart);
    const text = chunk.subarray(lineStart, end < 0 ? n : end).toString('utf8');
    const t = lineTime(text);
    if (t !== null) return { time: t, start: pos + lineStart };
    if (end < 0) return null;
    pos += end + 1;
    skipPartial = false;
  }
  return null;
}

/** The time of the last complete record of the file. */
function lastTime(fd: number, size: number): string | null {
  const len = Math.min(size, PROBE_BYTES);
  const buf = Buffer.alloc(len);
  const n = readSync(fd, buf, 0, len, size - len);
  const lines = buf.subarray(0, n).toString('utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const t = lineTime(lines[i]);
    if (t !== null) return t;
  }
  return null;
}

interface Plan {
  skip: boolean;
  start: number;
}

/** Whether a file can hold records in range, and the line offset to start reading at. */
function planFile(file: LogFile, q: LogQuery): Plan {
  const fd = openSync(file.path, 'r');
  try {
    const first = firstTimeFrom(fd, 0, file.size);
    if (first === null) return { skip: true, start: 0 };
    if (q.until !== undefined && first.time > q.until) return { skip: true, start: 0 };
    const last = lastTime(fd, file.size);
    if (q.since !== undefined && last !== null && last < q.since && !file.current) return { skip: true, start: 0 };
    if (q.since === undefined || first.time >= q.since) return { skip: false, start: 0 };
    // Largest line start known to be before `since`: everything earlier is out of range.
    let lo = 0;
    let hi = file.size;
    while (hi - lo > SEARCH_GRAIN) {
      const mid = Math.floor((lo + hi) / 2);
      const probe = firstTimeFrom(fd, mid, file.size);
      if (probe === null || probe.time >= q.since) hi = mid;
      else lo = probe.start;
    }
    return { skip: false, start: lo };
  } finally {
    closeSync(fd);
  }
}

/** A matcher for the raw line: cheap checks first, then the parsed record. */
export function lineMatcher(q: LogQuery): (line: string) => Record<string, unknown> | null {
  const typeProbes = q.types ? [...q.types].map((t) => `"type":${JSON.stringify(t)}`) : null;
  const grep = q.grep ? new RegExp(q.grep.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i') : null;
  return (line) => {
    if (typeProbes && !typeProbes.some((p) => line.includes(p))) return null;
    if (grep && !grep.test(line)) return null;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return null;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return null;
    const r = rec as Record<string, unknown>;
    if (q.types && !q.types.has(String(r.type))) return null;
    return r;
  };
}

/** Where reading stopped in the current file, for --follow. */
export interface ReadEnd {
  /** The current file's inode when it was read (-1: there was none), and the offset reached in it. */
  currentIno: number;
  currentOffset: number;
  /** Files read, and files skipped whole by their first and last records. */
  scanned: number;
  skipped: number;
}

/**
 * Calls `emit` for every matching record of `user`, in time order. Resolves
 * with where the current file ended, so --follow can go on from there.
 */
export async function readUserLog(logsDir: string, user: string, q: LogQuery, emit: (l: LogLine) => void): Promise<ReadEnd> {
  const match = lineMatcher(q);
  const end: ReadEnd = { currentIno: -1, currentOffset: 0, scanned: 0, skipped: 0 };
  for (const file of userLogFiles(logsDir, user)) {
    if (file.current) end.currentIno = file.ino;
    const plan = planFile(file, q);
    if (plan.skip) {
      if (file.current) end.currentOffset = file.size;
      end.skipped++;
      continue;
    }
    end.scanned++;
    const r = await scanFile(file.path, plan.start, file.size, q, match, emit);
    if (file.current) end.currentOffset = r.offset;
    if (r.pastUntil) break;
  }
  return end;
}

/** Streams [start, size) line by line; stops at the first record after `until`. */
async function scanFile(
  path: string, start: number, size: number, q: LogQuery, match: (line: string) => Record<string, unknown> | null, emit: (l: LogLine) => void,
): Promise<{ pastUntil: boolean; offset: number }> {
  if (start >= size) return { pastUntil: false, offset: size };
  const stream = createReadStream(path, { start, end: size - 1, highWaterMark: READ_CHUNK });
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let pos = start;
  // Just past the last newline read: a last line without its newline is still being written (left for --follow).
  let complete = start;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const nl = chunk.lastIndexOf(10);
      if (nl >= 0) complete = pos + nl + 1;
      pos += chunk.length;
      const text = rest + decoder.write(chunk);
      let from = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', from)) {
        const line = text.slice(from, i);
        from = i + 1;
        const t = lineTime(line);
        if (t === null) continue;
        if (q.since !== undefined && t < q.since) continue;
        if (q.until !== undefined && t > q.until) return { pastUntil: true, offset: complete };
        const record = match(line);
        if (record) emit({ line, record });
      }
      rest = text.slice(from);
    }
  } finally {
    stream.destroy();
  }
  return { pastUntil: false, offset: complete };
}
