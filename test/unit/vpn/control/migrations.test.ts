// Existing data directories upgrade in place: a store written by Sightline
// before users and devices (schema 1: one `peers` table, the peer name is the
// user) becomes users + devices + leases with every key, preshared key and
// address kept, so no client config has to be re-issued.
import Database from 'better-sqlite3';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listDevices, listUsers, MIGRATIONS, Store, type Migration } from '../../../../vpn/control';

// Frozen copy of schema 1 and of what its `peer add` inserted: this must not
// follow later edits of the migrations.
const SCHEMA_1 = `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
  );`;

const V1_PEERS = [
  { name: 'alice', psk: 'UHJlc2hhcmVkS2V5Rm9yQWxpY2VQcmVzaGFyZWRLZXk=', key: 'QWxpY2VQdWJsaWNLZXlBbGljZVB1YmxpY0tleUFsaWM=', v4: '10.77.0.2', v6: 'fd12:3456:789a::2', at: 1_700_000_000_000, disabled: 0 },
  { name: 'bob', psk: null, key: 'Qm9iUHVibGljS2V5Qm9iUHVibGljS2V5Qm9iUHVibGk=', v4: '10.77.0.3', v6: 'fd12:3456:789a::3', at: 1_700_000_100_000, disabled: 0 },
  { name: 'carol', psk: 'Q2Fyb2xQcmVzaGFyZWRLZXlDYXJvbFByZXNoYXJlZEs=', key: 'Q2Fyb2xQdWJsaWNLZXlDYXJvbFB1YmxpY0tleUNhcm8=', v4: '10.77.0.5', v6: 'fd12:3456:789a::5', at: 1_700_000_200_000, disabled: 1 },
];

function schema1Store(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sightline-migrate-'));
  const db = new Database(join(dir, 'state.db'));
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA_1);
  db.pragma('user_version = 1');
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('ipv6_pool', 'fd12:3456:789a::/64');
  const insert = db.prepare('INSERT INTO peers (name, user_name, public_key, preshared_key, ipv4, ipv6, created_at, disabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  for (const p of V1_PEERS) insert.run(p.name, p.name, p.key, p.psk, p.v4, p.v6, p.at, p.disabled);
  db.close();
  return dir;
}

describe('state store migrations', () => {
  test('a fresh store is created at the latest version, mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sightline-migrate-'));
    const store = Store.open(dir);
    expect(store.version).toBe(MIGRATIONS.length);
    expect(statSync(join(dir, 'state.db')).mode & 0o777).toBe(0o600);
    store.close();
  });

  test("schema 1 peers become users with a device \"default\" keeping keys, preshared keys and leases", () => {
    const store = Store.open(schema1Store());
    expect(store.version).toBe(MIGRATIONS.length);
    expect(listDevices(store).map((d) => [d.user, d.name, d.publicKey, d.presharedKey, d.ipv4, d.ipv6, d.createdAt, d.expiresAt])).toEqual(
      V1_PEERS.map((p) => [p.name, 'default', p.key, p.psk, p.v4, p.v6, p.at, null]),
    );
    store.close();
  });

  test('a disabled schema 1 peer becomes a disabled user (nothing disabled is enabled by an upgrade)', () => {
    const store = Store.open(schema1Store());
    expect(listUsers(store).map((u) => [u.name, u.disabled, u.devices])).toEqual([['alice', false, 1], ['bob', false, 1], ['carol', true, 1]]);
    store.close();
  });

  test('deployment facts (the IPv6 pool) survive; the old table is gone', () => {
    const store = Store.open(schema1Store());
    expect(store.getMeta('ipv6_pool')).toBe('fd12:3456:789a::/64');
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'peers'").get()).toBeUndefined();
    store.close();
  });

  test('migrated leases stay taken: the database refuses the same address twice', () => {
    const store = Store.open(schema1Store());
    const deviceId = listDevices(store)[0].id;
    expect(() => store.db.prepare('INSERT INTO leases (address, family, device_id, leased_at) VALUES (?, 4, ?, 0)').run('10.77.0.3', deviceId)).toThrow(/UNIQUE|PRIMARY KEY/);
    store.close();
  });

  test('opening a migrated store again changes nothing', () => {
    const dir = schema1Store();
    Store.open(dir).close();
    const again = Store.open(dir);
    expect(again.version).toBe(MIGRATIONS.length);
    expect(listDevices(again)).toHaveLength(V1_PEERS.length);
    again.close();
  });

  test('a failing migration leaves the store at its old version with its data', () => {
    const dir = schema1Store();
    const broken: Migration[] = [...MIGRATIONS.slice(0, 1), { description: 'broken', up: (db) => db.exec('CREATE TABLE users (id INTEGER); SELECT nope FROM nowhere;') }];
    expect(() => Store.open(dir, broken)).toThrow(/migration 2 \(broken\) failed: .*no such table: nowhere.*The store is unchanged/);
    const db = new Database(join(dir, 'state.db'));
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(db.prepare('SELECT COUNT(*) AS n FROM peers').get()).toEqual({ n: 3 });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'users'").get()).toBeUndefined();
    db.close();
  });

  test('a store from a newer Sightline is refused, not downgraded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sightline-migrate-'));
    Store.open(dir).close();
    expect(() => Store.open(dir, MIGRATIONS.slice(0, 1))).toThrow(/schema version 2, newer than this Sightline understands \(1\)/);
  });
});
