// Tunnel address pools: the concentrator takes the first host address of each
// pool; devices are leased the following ones, one IPv4 and one IPv6 each.
// A lease is a row in the leases table (its address is the primary key), taken
// in the device's write transaction and freed with the device.
import { randomBytes } from 'node:crypto';
import { IpAddress, IpCidr, type IpFamily } from '../../netstack/wire';
import type { Store } from './store';

export interface Pools {
  ipv4Pool: string;
  ipv6Pool: string;
}

export interface PoolLayout extends Pools {
  /** The concentrator's own tunnel addresses. */
  serverV4: string;
  serverV6: string;
  v4Prefix: number;
  v6Prefix: number;
  /** Address with host index i (0 = network address). */
  v4At(i: bigint): string | null;
  v6At(i: bigint): string | null;
  /** Host index of an address inside the pool, or null when outside. */
  v4Index(addr: string): bigint | null;
  v6Index(addr: string): bigint | null;
  /** How many device leases the pools allow (the smaller pool bounds it). */
  capacity: bigint;
  v4Capacity: bigint;
  v6Capacity: bigint;
}

function pool(text: string, family: IpFamily, key: string): IpCidr {
  const cidr = IpCidr.parse(text);
  if (cidr.family !== family) throw new Error(`${key} ${text} is not an IPv${family} prefix`);
  return cidr;
}

export function layoutPools(p: Pools): PoolLayout {
  const v4 = pool(p.ipv4Pool, 4, 'tunnel.ipv4Pool');
  const v6 = pool(p.ipv6Pool, 6, 'tunnel.ipv6Pool');
  const v4Base = v4.network.toBigInt();
  const v6Base = v6.network.toBigInt();
  const v4Size = 1n << BigInt(32 - v4.prefixLength);
  const v6Size = 1n << BigInt(128 - v6.prefixLength);
  // IPv4: skip the network (0), server (1) and broadcast (size-1) addresses.
  const v4Capacity = v4Size > 3n ? v4Size - 3n : 0n;
  const v6Capacity = v6Size > 2n ? v6Size - 2n : 0n;
  const v4At = (i: bigint) => (i > 0n && i < v4Size - 1n ? IpAddress.fromBigInt(4, v4Base + i).toString() : null);
  const v6At = (i: bigint) => (i > 0n && i < v6Size ? IpAddress.fromBigInt(6, v6Base + i).toString() : null);
  return {
    ipv4Pool: p.ipv4Pool,
    ipv6Pool: p.ipv6Pool,
    serverV4: v4At(1n) ?? fail(`tunnel.ipv4Pool ${p.ipv4Pool} is too small`),
    serverV6: v6At(1n) ?? fail(`tunnel.ipv6Pool ${p.ipv6Pool} is too small`),
    v4Prefix: v4.prefixLength,
    v6Prefix: v6.prefixLength,
    v4At,
    v6At,
    v4Index: (addr) => {
      const i = IpAddress.parse(addr).toBigInt() - v4Base;
      return i >= 0n && i < v4Size ? i : null;
    },
    v6Index: (addr) => {
      const i = IpAddress.parse(addr).toBigInt() - v6Base;
      return i >= 0n && i < v6Size ? i : null;
    },
    capacity: v4Capacity < v6Capacity ? v4Capacity : v6Capacity,
    v4Capacity,
    v6Capacity,
  };
}

export interface Lease {
  ipv4: string;
  ipv6: string;
}

/**
 * The lowest free address of each pool, at the same host index in both when
 * possible (a device's two addresses are then easy to correlate in logs).
 * Index 1 is the concentrator; devices start at 2.
 */
export function pickAddresses(layout: PoolLayout, used: ReadonlySet<string>): Lease {
  let v4: string | null = null;
  let v6: string | null = null;
  // At most used.size indexes have an address taken, so the first
  // used.size + 1 device indexes hold one free in both pools, unless a pool
  // ends first; then each pool's lowest free address is the answer.
  const scanTo = BigInt(used.size) + 2n;
  for (let i = 2n; i <= scanTo; i++) {
    const a = layout.v4At(i);
    const b = layout.v6At(i);
    if (a === null && b === null) break;
    const freeA = a !== null && !used.has(a);
    const freeB = b !== null && !used.has(b);
    if (freeA && freeB) return { ipv4: a, ipv6: b };
    if (freeA && v4 === null) v4 = a;
    if (freeB && v6 === null) v6 = b;
  }
  if (v4 === null) throw poolFull('tunnel.ipv4Pool', layout.ipv4Pool, layout.v4Capacity);
  if (v6 === null) throw poolFull('tunnel.ipv6Pool', layout.ipv6Pool, layout.v6Capacity);
  return { ipv4: v4, ipv6: v6 };
}

function poolFull(key: string, pool: string, capacity: bigint): Error {
  return new Error(
    `${key} ${pool} is full: all ${capacity} device addresses are leased. ` +
      `Widen ${key} in sightline.yaml (keep its first address, e.g. a /16 instead of a /24, so the concentrator's address and existing leases stay valid), ` +
      'or free leases with: sightline device remove USER DEVICE',
  );
}

/** Inside the device's write transaction: leases one address of each family to it. */
export function leaseAddresses(store: Store, layout: PoolLayout, deviceId: number, now: number): Lease {
  const used = new Set(store.db.prepare('SELECT address FROM leases').pluck().all() as string[]);
  const lease = pickAddresses(layout, used);
  const insert = store.db.prepare('INSERT INTO leases (address, family, device_id, leased_at) VALUES (?, ?, ?, ?)');
  insert.run(lease.ipv4, 4, deviceId, now);
  insert.run(lease.ipv6, 6, deviceId, now);
  return lease;
}

/** A random RFC 4193 ULA /64 (fdXX:XXXX:XXXX:0::/64), made once per deployment. */
export function randomUlaPrefix(): string {
  const g = randomBytes(5).toString('hex');
  return `fd${g.slice(0, 2)}:${g.slice(2, 6)}:${g.slice(6, 10)}::/64`;
}

function fail(msg: string): never {
  throw new Error(msg);
}
