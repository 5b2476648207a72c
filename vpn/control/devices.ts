// Devices: one WireGuard key pair each, belonging to a user, with one IPv4
// and one IPv6 lease and an optional expiry. A device is refused when its
// user is disabled or it has expired; re-enabling the user does not revive an
// expired device, renewing it does.
import { leaseAddresses, type PoolLayout } from './leases';
import type { Store } from './store';
import { ensureUser, requireUser, validateName } from './users';

/** The name `device add` gives a user's first device; later ones are device2, device3, ... */
export const DEFAULT_DEVICE = 'default';

export type DeviceState = 'active' | 'disabled' | 'expired';

export interface DeviceRecord {
  id: number;
  user: string;
  name: string;
  publicKey: string;
  presharedKey: string | null;
  ipv4: string;
  ipv6: string;
  createdAt: number;
  /** ms since the epoch; null: never expires. */
  expiresAt: number | null;
  userDisabled: boolean;
}

interface DeviceRow {
  id: number;
  user_name: string;
  name: string;
  public_key: string;
  preshared_key: string | null;
  ipv4: string;
  ipv6: string;
  created_at: number;
  expires_at: number | null;
  user_disabled: number;
}

export interface NewDevice {
  user: string;
  /** Absent: "default" for the first device, else the first free deviceN. */
  name?: string;
  /** Used only when the user is created here. */
  email?: string | null;
  publicKey: string;
  presharedKey: string | null;
  expiresAt: number | null;
}

const SELECT = `SELECT d.id, u.name AS user_name, d.name, d.public_key, d.preshared_key, d.created_at, d.expires_at,
    u.disabled AS user_disabled,
    (SELECT address FROM leases l WHERE l.device_id = d.id AND l.family = 4) AS ipv4,
    (SELECT address FROM leases l WHERE l.device_id = d.id AND l.family = 6) AS ipv6
  FROM devices d JOIN users u ON u.id = d.user_id`;

export function deviceState(d: DeviceRecord, now: number): DeviceState {
  if (d.userDisabled) return 'disabled';
  return d.expiresAt !== null && d.expiresAt <= now ? 'expired' : 'active';
}

/** What status.json and client configs call the device: the user for "default", else user/device. */
export function peerLabel(user: string, device: string): string {
  return device === DEFAULT_DEVICE ? user : `${user}/${device}`;
}

export function listDevices(store: Store, user?: string): DeviceRecord[] {
  const rows = user === undefined
    ? store.db.prepare(`${SELECT} ORDER BY u.name, d.id`).all()
    : store.db.prepare(`${SELECT} WHERE u.name = ? ORDER BY d.id`).all(user);
  return (rows as DeviceRow[]).map(toDevice);
}

export function findDevice(store: Store, user: string, name: string): DeviceRecord | null {
  const row = store.db.prepare(`${SELECT} WHERE u.name = ? AND d.name = ?`).get(user, name) as DeviceRow | undefined;
  return row ? toDevice(row) : null;
}

/**
 * Creates the device (and its user when missing) and leases its addresses,
 * all in one write transaction: two concurrent `device add` never get the
 * same address or name.
 */
export function addDevice(store: Store, layout: PoolLayout, d: NewDevice): { device: DeviceRecord; userCreated: boolean } {
  validateName('user', d.user);
  if (d.name !== undefined) validateName('device', d.name);
  return store.write(() => {
    const user = ensureUser(store, d.user, d.email ?? null);
    const name = d.name ?? freeDeviceName(store, user.id);
    if (findDevice(store, d.user, name)) throw new Error(`user "${d.user}" already has a device named "${name}" (see: sightline device list ${d.user})`);
    const owner = store.db.prepare(`SELECT u.name AS user, d.name AS device FROM devices d JOIN users u ON u.id = d.user_id WHERE d.public_key = ?`).get(d.publicKey) as { user: string; device: string } | undefined;
    if (owner) throw new Error(`this public key is already used by device "${owner.device}" of user "${owner.user}": every device needs its own key pair`);
    const now = Date.now();
    const info = store.db
      .prepare('INSERT INTO devices (user_id, name, public_key, preshared_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(user.id, name, d.publicKey, d.presharedKey, now, d.expiresAt);
    leaseAddresses(store, layout, Number(info.lastInsertRowid), now);
    return { device: findDevice(store, d.user, name) as DeviceRecord, userCreated: user.created };
  });
}

function freeDeviceName(store: Store, userId: number): string {
  const taken = new Set(store.db.prepare('SELECT name FROM devices WHERE user_id = ?').pluck().all(userId) as string[]);
  if (!taken.has(DEFAULT_DEVICE)) return DEFAULT_DEVICE;
  for (let i = 2; ; i++) if (!taken.has(`device${i}`)) return `device${i}`;
}

/** Removes the device; its leases are freed with it (ON DELETE CASCADE). */
export function removeDevice(store: Store, user: string, name: string): DeviceRecord {
  return store.write(() => {
    const device = requireDevice(store, user, name);
    store.db.prepare('DELETE FROM devices WHERE id = ?').run(device.id);
    return device;
  });
}

/** Sets a new expiry (null: never); the running concentrator admits the device again if that was all that refused it. */
export function renewDevice(store: Store, user: string, name: string, expiresAt: number | null): DeviceRecord {
  return store.write(() => {
    const device = requireDevice(store, user, name);
    store.db.prepare('UPDATE devices SET expires_at = ? WHERE id = ?').run(expiresAt, device.id);
    return findDevice(store, user, name) as DeviceRecord;
  });
}

export function requireDevice(store: Store, user: string, name: string): DeviceRecord {
  const device = findDevice(store, user, name);
  if (device) return device;
  requireUser(store, user);
  throw new Error(`user "${user}" has no device named ${JSON.stringify(name)} (see: sightline device list ${user})`);
}

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    user: r.user_name,
    name: r.name,
    publicKey: r.public_key,
    presharedKey: r.preshared_key,
    ipv4: r.ipv4,
    ipv6: r.ipv6,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    userDisabled: r.user_disabled !== 0,
  };
}
