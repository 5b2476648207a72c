// routing.exclude: networks kept out of the tunnel (a device's home LAN, a
// branch office). WireGuard clients route what AllowedIPs lists, so the
// client config lists the complement: 0.0.0.0/0 and ::/0 minus the
// exclusions, as the fewest prefixes that cover exactly that.
import { IpAddress, IpCidr } from '../netstack/wire';

type Interval = [start: bigint, end: bigint]; // half-open

/**
 * AllowedIPs for a client config: everything but `exclude`, with `keep`
 * (the tunnel pools: the concentrator's DNS and addresses) always inside.
 * IPv4 prefixes first, then IPv6, each in address order.
 */
export function allowedIpsFor(exclude: readonly string[], keep: readonly string[] = []): string[] {
  return ([4, 6] as const).flatMap((family) => {
    const ex = intervalsOf(exclude, family);
    const kept = intervalsOf(keep, family);
    return complement(subtract(ex, kept), family).flatMap(([s, e]) => rangeToPrefixes(s, e, family));
  });
}

function bitsOf(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

/** Sorted, merged (overlapping and adjacent joined) intervals of the prefixes of one family. */
function intervalsOf(prefixes: readonly string[], family: 4 | 6): Interval[] {
  const bits = bitsOf(family);
  const raw = prefixes
    .map((p) => IpCidr.parse(p))
    .filter((c) => c.family === family)
    .map((c): Interval => {
      const start = toBigInt(c.network.bytes);
      return [start, start + (1n << BigInt(bits - c.prefixLength))];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of raw) {
    const last = out[out.length - 1];
    if (last !== undefined && iv[0] <= last[1]) last[1] = iv[1] > last[1] ? iv[1] : last[1];
    else out.push([iv[0], iv[1]]);
  }
  return out;
}

/** a minus b; both sorted and merged. */
function subtract(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const [s0, e] of a) {
    let s = s0;
    for (const [bs, be] of b) {
      if (be <= s || bs >= e) continue;
      if (bs > s) out.push([s, bs]);
      s = be > s ? be : s;
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

function complement(ivs: Interval[], family: 4 | 6): Interval[] {
  const top = 1n << BigInt(bitsOf(family));
  const out: Interval[] = [];
  let at = 0n;
  for (const [s, e] of ivs) {
    if (s > at) out.push([at, s]);
    at = e;
  }
  if (at < top) out.push([at, top]);
  return out;
}

/**
 * The fewest prefixes covering [start, end) exactly: repeatedly the largest
 * block that starts at `start` (aligned to it) and fits before `end`.
 */
function rangeToPrefixes(start: bigint, end: bigint, family: 4 | 6): string[] {
  const bits = bitsOf(family);
  const out: string[] = [];
  let s = start;
  while (s < end) {
    let size = 0;
    while (size < bits && (s & ((1n << BigInt(size + 1)) - 1n)) === 0n && s + (1n << BigInt(size + 1)) <= end) size++;
    out.push(`${fromBigInt(s, family).toString()}/${bits - size}`);
    s += 1n << BigInt(size);
  }
  return out;
}

function toBigInt(bytes: Buffer): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBigInt(v: bigint, family: 4 | 6): IpAddress {
  const len = family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return IpAddress.fromBytes(out);
}
