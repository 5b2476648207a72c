// `sightline logs --follow`: after the records so far, print new ones as the
// concentrator appends them, and go on in the new file when the current one
// is rotated (its inode changes: the old file is read to its end first; the
// writer closed it before renaming it). Polls: inotify is not available on
// every file system a data directory lives on.
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { userFileName } from './files';
import { lineMatcher, lineTime, type LogLine, type LogQuery, type ReadEnd } from './reader';

const POLL_MS = 200;
const READ_CHUNK = 1024 * 1024;

export async function followUserLog(logsDir: string, user: string, from: ReadEnd, q: LogQuery, emit: (l: LogLine) => void, signal: AbortSignal, pollMs = POLL_MS): Promise<void> {
  const path = join(logsDir, userFileName(user));
  const match = lineMatcher(q);
  let fd: number | null = null;
  let ino = -1;
  let offset = 0;
  let pending = Buffer.alloc(0);
  let first = true;
  const buf = Buffer.alloc(READ_CHUNK);

  const drain = (): void => {
    if (fd === null) return;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n <= 0) return;
      offset += n;
      const data = pending.length > 0 ? Buffer.concat([pending, buf.subarray(0, n)]) : buf.subarray(0, n);
      const nl = data.lastIndexOf(10);
      pending = Buffer.from(nl < 0 ? data : data.subarray(nl + 1));
      if (nl < 0) continue;
      for (const line of data.subarray(0, nl).toString('utf8').split('\n')) {
        const t = lineTime(line);
        if (t === null || (q.since !== undefined && t < q.since)) continue;
        const record = match(line);
        if (record) emit({ line, record });
      }
    }
  };

  try {
    while (!signal.aborted) {
      if (fd === null) {
        try {
          fd = openSync(path, 'r');
          ino = fstatSync(fd).ino;
          // Go on where the first read stopped, unless the file was rotated in between.
          offset = first && ino === from.currentIno ? from.currentOffset : 0;
          pending = Buffer.alloc(0);
        } catch {
          fd = null;
        }
        first = false;
      }
      if (fd !== null) {
        if (fstatSync(fd).size < offset) offset = 0;
        drain();
        if (rotatedAway(path, ino)) {
          drain();
          closeSync(fd);
          fd = null;
          continue;
        }
      }
      await sleep(pollMs, signal);
    }
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function rotatedAway(path: string, ino: number): boolean {
  try {
    return statSync(path).ino !== ino;
  } catch {
    return true;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
