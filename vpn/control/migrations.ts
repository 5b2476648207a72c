// Versioned schema migrations of the state store. PRAGMA user_version is the
// number of migrations applied; each one runs in the same write transaction
// that bumps it, so a data directory is always at exactly one version, and
// two processes opening an old store at once migrate it once. A migration is
// never edited after release: later changes are new entries.
import type Database from 'better-sqlite3';

export interface Migration {
  /** What the migration does, for the error if it fails. */
  description: string;
  up(db: Database.Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    description: 'peers: one per user, with keys and leases',
    up: (db) =>
      db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
        );`),
  },
  {
    description: 'users, their devices, and one IPv4 and one IPv6 lease per device',
    up: (db) =>
      db.exec(`CREATE TABLE users (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          email TEXT,
          disabled INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL
        );
        CREATE TABLE devices (
          id INTEGER PRIMARY KEY,
          user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          public_key TEXT NOT NULL UNIQUE,
          preshared_key TEXT,
          created_at INTEGER NOT NULL,
          -- ms since the epoch; NULL: never expires
          expires_at INTEGER,
          UNIQUE (user_id, name)
        );
        -- The primary key is what makes a lease exclusive: an address is
        -- leased to at most one device, and freed with it.
        CREATE TABLE leases (
          address TEXT PRIMARY KEY,
          family INTEGER NOT NULL CHECK (family IN (4, 6)),
          device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
          leased_at INTEGER NOT NULL,
          UNIQUE (device_id, family)
        );
        -- Version 1 had one peer per user, named after it: that peer becomes
        -- the user's device "default" with the same keys and addresses. A
        -- disabled peer disables its user (never enable what was disabled).
        INSERT INTO users (name, disabled, created_at)
          SELECT user_name, MAX(disabled), MIN(created_at) FROM peers GROUP BY user_name ORDER BY MIN(id);
        INSERT INTO devices (id, user_id, name, public_key, preshared_key, created_at)
          SELECT p.id, u.id, CASE WHEN p.name = p.user_name THEN 'default' ELSE p.name END,
                 p.public_key, p.preshared_key, p.created_at
          FROM peers p JOIN users u ON u.name = p.user_name;
        INSERT INTO leases (address, family, device_id, leased_at) SELECT ipv4, 4, id, created_at FROM peers;
        INSERT INTO leases (address, family, device_id, leased_at) SELECT ipv6, 6, id, created_at FROM peers;
        DROP TABLE peers;`),
  },
];
