// Users: the people devices belong to. Disabling a user refuses all of their
// devices (the running concentrator ends their tunnels within a second);
// removing one removes their devices and frees their leases.
import type { Store } from './store';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
// Deliberately loose: one @, no spaces; the address is for people to read, never sent to.
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

export interface UserRecord {
  id: number;
  name: string;
  email: string | null;
  disabled: boolean;
  createdAt: number;
  devices: number;
}

interface UserRow {
  id: number;
  name: string;
  email: string | null;
  disabled: number;
  created_at: number;
  devices: number;
}

/** User and device names share one alphabet: safe in file names (per-user logs) and configs. */
export function validateName(what: 'user' | 'device' | 'peer', name: string): void {
  if (!NAME_RE.test(name)) {
    throw new Error(`invalid ${what} name ${JSON.stringify(name)}: use 1-64 letters, digits, and . _ @ + - (starting with a letter or digit)`);
  }
}

export function validateEmail(email: string): void {
  if (!EMAIL_RE.test(email)) throw new Error(`invalid email ${JSON.stringify(email)}: expected an address like alice@example.com`);
}

const SELECT = `SELECT u.id, u.name, u.email, u.disabled, u.created_at,
  (SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id) AS devices FROM users u`;

export function listUsers(store: Store): UserRecord[] {
  return (store.db.prepare(`${SELECT} ORDER BY u.name`).all() as UserRow[]).map(toUser);
}

export function findUser(store: Store, name: string): UserRecord | null {
  const row = store.db.prepare(`${SELECT} WHERE u.name = ?`).get(name) as UserRow | undefined;
  return row ? toUser(row) : null;
}

export function addUser(store: Store, name: string, email: string | null): UserRecord {
  validateName('user', name);
  if (email !== null) validateEmail(email);
  return store.write(() => {
    if (findUser(store, name)) throw new Error(`user "${name}" already exists (see: sightline user list)`);
    insertUser(store, name, email);
    return findUser(store, name) as UserRecord;
  });
}

/** Inside a write transaction: the user's id, creating the user when missing. */
export function ensureUser(store: Store, name: string, email: string | null): { id: number; created: boolean; disabled: boolean } {
  const row = store.db.prepare('SELECT id, disabled FROM users WHERE name = ?').get(name) as { id: number; disabled: number } | undefined;
  if (row) return { id: row.id, created: false, disabled: row.disabled !== 0 };
  return { id: insertUser(store, name, email), created: true, disabled: false };
}

function insertUser(store: Store, name: string, email: string | null): number {
  const info = store.db.prepare('INSERT INTO users (name, email, created_at) VALUES (?, ?, ?)').run(name, email, Date.now());
  return Number(info.lastInsertRowid);
}

/** Returns false when the user was already in that state. */
export function setUserDisabled(store: Store, name: string, disabled: boolean): boolean {
  return store.write(() => {
    const user = requireUser(store, name);
    if (user.disabled === disabled) return false;
    store.db.prepare('UPDATE users SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, user.id);
    return true;
  });
}

/** Removes the user, their devices and leases (ON DELETE CASCADE); returns how many devices went. */
export function removeUser(store: Store, name: string): number {
  return store.write(() => {
    const user = requireUser(store, name);
    store.db.prepare('DELETE FROM users WHERE id = ?').run(user.id);
    return user.devices;
  });
}

export function requireUser(store: Store, name: string): UserRecord {
  const user = findUser(store, name);
  if (!user) throw new Error(`no user named ${JSON.stringify(name)} (see: sightline user list)`);
  return user;
}

function toUser(r: UserRow): UserRecord {
  return { id: r.id, name: r.name, email: r.email, disabled: r.disabled !== 0, createdAt: r.created_at, devices: r.devices };
}
