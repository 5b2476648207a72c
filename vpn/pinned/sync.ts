// The running concentrator's side of the pinned-host files (admin.ts):
// once a second it re-reads pinned-admin.json if the file changed (so an
// approval or removal takes effect without a restart), and writes
// pinned.json if the learned pins changed (so `sightline pinned list` shows
// a host pending approval within a second or two of it being learned).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { PinningTracker } from '../../mitm';
import type { Logger } from '../process';
import { ApprovedPins, PINNED_FILE, pinnedAdminPath, readPinnedAdmin } from './admin';

export const PINNED_SYNC_MS = 1_000;

export class PinnedSync {
  readonly approvals = new ApprovedPins();
  private readonly pinsFile: string;
  private readonly adminFile: string;
  /** Identity of the admin file last read: inode, size, mtime ("absent" when missing). */
  private adminStamp: string | null = null;
  private savedVersion: number;
  private readonly timer: NodeJS.Timeout;

  constructor(dataDir: string, private readonly tracker: PinningTracker, private readonly log: Logger, intervalMs = PINNED_SYNC_MS) {
    this.pinsFile = join(dataDir, PINNED_FILE);
    this.adminFile = pinnedAdminPath(dataDir);
    try {
      tracker.load(this.pinsFile, Date.now());
    } catch (err) {
      log.warn({ err: (err as Error).message, file: this.pinsFile }, 'cannot load the pinned-host list; starting empty');
    }
    this.savedVersion = tracker.version;
    this.sync();
    this.timer = setInterval(() => this.sync(), intervalMs);
  }

  /** Never throws: a bad file is logged and the previous decisions stay in force. */
  sync(): void {
    try {
      this.readAdminIfChanged();
    } catch (err) {
      this.log.error({ err: (err as Error).message, file: this.adminFile }, 'cannot apply pinned-host decisions; the previous ones stay in force');
    }
    if (this.tracker.version !== this.savedVersion) this.save();
  }

  close(): void {
    clearInterval(this.timer);
    this.save();
  }

  private readAdminIfChanged(): void {
    const stamp = fileStamp(this.adminFile);
    if (stamp === this.adminStamp) return;
    // Set first: a malformed file is reported once, not every second.
    this.adminStamp = stamp;
    const admin = readPinnedAdmin(this.adminFile);
    this.approvals.replace(admin.approved);
    let forgotten = 0;
    for (const r of admin.removed) if (this.tracker.unpin(r.user, r.host, r.at)) forgotten++;
    this.log.info({ approved: admin.approved.length, forgotten }, 'pinned-host decisions loaded');
  }

  private save(): void {
    try {
      const version = this.tracker.version;
      this.tracker.save(this.pinsFile, Date.now());
      this.savedVersion = version;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, file: this.pinsFile }, 'cannot save the pinned-host list');
    }
  }
}

function fileStamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Unreadable: readPinnedAdmin then reports why, once per kind of failure.
    return code === 'ENOENT' ? 'absent' : `error:${code ?? 'unknown'}`;
  }
}
