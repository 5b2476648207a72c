// Tunnel address pools: the concentrator takes the first host address of each
// pool; peers are leased the following ones, one IPv4 and one IPv6 each.
import { Address4, Address6 } from 'ip-address';
import { randomBytes } from 'node:crypto';

export interface Pools {
  ipv4Pool: string;
  ipv6Pool: string;
}

export interface PoolLayout {
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
  /** How many peer leases the pools allow (the smaller pool bounds it). */
  capacity: bigint;
}

export function layoutPools(p: Pools): PoolLayout {
  const v4 = new Address4(p.ipv4Pool);
  const v6 = new Address6(p.ipv6Pool);
  const v4Base = v4.startAddress().bigInt();
  const v6Base = v6.startAddress().bigInt();
  const v4Size = 1n << BigInt(32 - v4.subnetMask);
  const v6Size = 1n << BigInt(128 - v6.subnetMask);
  // IPv4: skip the network (0), server (1) and broadcast (size-1) addresses.
  const v4Capacity = v4Size > 3n ? v4Size - 3n : 0n;
  const v6Capacity = v6Size > 2n ? v6Size - 2n : 0n;
  const v4At = (i: bigint) => (i > 0n && i < v4Size - 1n ? Address4.fromBigInt(v4Base + i).address : null);
  const v6At = (i: bigint) => (i > 0n && i < v6Size ? Address6.fromBigInt(v6Base + i).correctForm() : null);
  return {
    serverV4: v4At(1n) ?? fail(`tunnel.ipv4Pool ${p.ipv4Pool} is too small`),
    serverV6: v6At(1n) ?? fail(`tunnel.ipv6Pool ${p.ipv6Pool} is too small`),
    v4Prefix: v4.subnetMask,
    v6Prefix: v6.subnetMask,
    v4At,
    v6At,
    v4Index: (addr) => {
      const i = new Address4(addr).bigInt() - v4Base;
      return i >= 0n && i < v4Size ? i : null;
    },
    v6Index: (addr) => {
      const i = new Address6(addr).bigInt() - v6Base;
      return i >= 0n && i < v6Size ? i : null;
    },
    capacity: v4Capacity < v6Capacity ? v4Capacity : v6Capacity,
  };
}

/** A random RFC 4193 ULA /64 (fdXX:XXXX:XXXX:0::/64), made once per deployment. */
export function randomUlaPrefix(): string {
  const g = randomBytes(5).toString('hex');
  return `fd${g.slice(0, 2)}:${g.slice(2, 6)}:${g.slice(6, 10)}::/64`;
}

function fail(msg: string): never {
  throw new Error(msg);
}
