// The embedded state store (SQLite, WAL): users, their devices with keys and
// leases, deployment-wide facts. The running concentrator and the CLI open
// the same file; a running concentrator notices changes through PRAGMA
// data_version. Queries live with their concern (users.ts, devices.ts,
// leases.ts); this file owns the connection, migrations and transactions.
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../config';
import { MIGRATIONS, type Migration } from './migrations';

export class Store {
  private constructor(
    /** The connection, for the control plane's query modules only. */
    readonly db: Database.Database,
  ) {}

  static open(dataDir: string, migrations: readonly Migration[] = MIGRATIONS): Store {
    ensurePrivateDir(dataDir);
    const file = join(dataDir, 'state.db');
    const fresh = !existsSync(file);
    const db = new Database(file);
    // Device preshared keys live here: the file is a secret.
    if (fresh) chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    // Per connection, and only outside a transaction: removing a user removes its devices and leases.
    db.pragma('foreign_keys = ON');
    const store = new Store(db);
    try {
      store.migrate(file, migrations);
    } catch (err) {
      db.close();
      throw err;
    }
    return store;
  }

  close(): void {
    this.db.close();
  }

  /** The schema version (number of migrations applied). */
  get version(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(file: string, migrations: readonly Migration[]): void {
    if (this.version > migrations.length) {
      throw new Error(`${file} has schema version ${this.version}, newer than this Sightline understands (${migrations.length}): run the Sightline version that wrote it, or a newer one`);
    }
    // One write transaction per step, re-reading the version inside it: a
    // second process that opened the same old store waits, then skips.
    for (;;) {
      const done = this.write(() => {
        const v = this.version;
        if (v >= migrations.length) return true;
        try {
          migrations[v].up(this.db);
        } catch (err) {
          throw new Error(`${file}: migration ${v + 1} (${migrations[v].description}) failed: ${(err as Error).message}. The store is unchanged; restore a backup or report this.`);
        }
        this.db.pragma(`user_version = ${v + 1}`);
        return false;
      });
      if (done) return;
    }
  }

  /**
   * Runs fn in one write transaction (BEGIN IMMEDIATE): other writers wait,
   * so reading what is free and taking it cannot race another process.
   */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Changes whenever another connection commits: cheap to poll. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  getMeta(key: string): string | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  /** Sets key to value unless already set; returns the stored value. */
  getOrSetMeta(key: string, make: () => string): string {
    return this.write(() => {
      const existing = this.getMeta(key);
      if (existing !== null) return existing;
      const value = make();
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, value);
      return value;
    });
  }
}
