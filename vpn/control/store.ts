// The embedded state store (SQLite, WAL): peers, their keys and leases,
// deployment-wide facts. The running concentrator and the CLI open the same
// file; a running concentrator notices changes through PRAGMA data_version.
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../data_dir';

export interface PeerRecord {
  id: number;
  name: string;
  /** The user this peer belongs to; until users/devices exist, the peer's name. */
  user: string;
  publicKey: string;
  presharedKey: string | null;
  ipv4: string;
  ipv6: string;
  createdAt: number;
  disabled: boolean;
}

interface PeerRow {
  id: number;
  name: string;
  user_name: string;
  public_key: string;
  preshared_key: string | null;
  ipv4: string;
  ipv6: string;
  created_at: number;
  disabled: number;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE peers (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     user_name TEXT NOT NULL,
     public_key TEXT NOT NULL UNIQUE,
     preshared_key TEXT,
     ipv4 TEXT NOT NULL UNIQUE,
     ipv6 TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     disabled INTEGER NOT NULL DEFAULT 0
   );`,
];

export class Store {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(dataDir: string): Store {
    ensurePrivateDir(dataDir);
    const file = join(dataDir, 'state.db');
    const fresh = !existsSync(file);
    const db = new Database(file);
    // Peer preshared keys live here: the file is a secret.
    if (fresh) chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    const store = new Store(db);
    store.migrate();
    return store;
  }

  close(): void {
    this.db.close();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
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
    return this.db.transaction(() => {
      const existing = this.getMeta(key);
      if (existing !== null) return existing;
      const value = make();
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, value);
      return value;
    }).immediate();
  }

  listPeers(): PeerRecord[] {
    return (this.db.prepare('SELECT * FROM peers ORDER BY id').all() as PeerRow[]).map(toRecord);
  }

  findPeer(name: string): PeerRecord | null {
    const row = this.db.prepare('SELECT * FROM peers WHERE name = ?').get(name) as PeerRow | undefined;
    return row ? toRecord(row) : null;
  }

  /**
   * Inserts a peer with addresses chosen by pickAddresses, which sees the
   * addresses in use; runs in one write transaction so two concurrent
   * `peer add` never lease the same address.
   */
  addPeer(
    p: { name: string; user: string; publicKey: string; presharedKey: string | null },
    pickAddresses: (used: { ipv4: Set<string>; ipv6: Set<string> }) => { ipv4: string; ipv6: string },
  ): PeerRecord {
    return this.db.transaction(() => {
      if (this.findPeer(p.name)) throw new Error(`a peer named "${p.name}" already exists`);
      const rows = this.db.prepare('SELECT ipv4, ipv6 FROM peers').all() as Array<{ ipv4: string; ipv6: string }>;
      const used = { ipv4: new Set(rows.map((r) => r.ipv4)), ipv6: new Set(rows.map((r) => r.ipv6)) };
      const addr = pickAddresses(used);
      const info = this.db
        .prepare('INSERT INTO peers (name, user_name, public_key, preshared_key, ipv4, ipv6, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(p.name, p.user, p.publicKey, p.presharedKey, addr.ipv4, addr.ipv6, Date.now());
      const row = this.db.prepare('SELECT * FROM peers WHERE id = ?').get(info.lastInsertRowid) as PeerRow;
      return toRecord(row);
    }).immediate();
  }

  removePeer(name: string): boolean {
    return this.db.prepare('DELETE FROM peers WHERE name = ?').run(name).changes > 0;
  }
}

function toRecord(r: PeerRow): PeerRecord {
  return {
    id: r.id,
    name: r.name,
    user: r.user_name,
    publicKey: r.public_key,
    presharedKey: r.preshared_key,
    ipv4: r.ipv4,
    ipv6: r.ipv6,
    createdAt: r.created_at,
    disabled: r.disabled !== 0,
  };
}
