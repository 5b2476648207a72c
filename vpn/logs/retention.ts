// log.retentionDays: rotated files whose period ended longer ago than that are
// deleted, and so is a current file nobody wrote to for that long (a user who
// left). Rotation is rotating-file-stream's; this is only the age limit.
import { readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ARCHIVE_DIR, archivePeriod, LOG_EXT } from './files';

const DAY_MS = 86_400_000;

/** Deletes expired files under `logsDir`; `openUsers` (encoded names) have a file open and keep their current file. */
export function sweepExpired(logsDir: string, now: number, retentionDays: number, openUsers: ReadonlySet<string>): number {
  const cutoff = now - retentionDays * DAY_MS;
  let removed = 0;
  const archive = join(logsDir, ARCHIVE_DIR);
  for (const user of listDir(archive)) {
    const dir = join(archive, user);
    const names = listDir(dir);
    let left = names.length;
    for (const name of names) {
      const start = archivePeriod(name);
      // A period is at most a day: its records are all older than its start plus a day.
      if (start === null || start + DAY_MS > cutoff) continue;
      if (tryUnlink(join(dir, name))) {
        removed++;
        left--;
      }
    }
    if (left === 0) tryRmdir(dir);
  }
  for (const name of listDir(logsDir)) {
    if (!name.endsWith(LOG_EXT) || openUsers.has(name.slice(0, -LOG_EXT.length))) continue;
    const path = join(logsDir, name);
    try {
      if (statSync(path).mtimeMs < cutoff && tryUnlink(path)) removed++;
    } catch {
      // Gone meanwhile.
    }
  }
  return removed;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function tryUnlink(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (a rotation just added a file) or gone.
  }
}
