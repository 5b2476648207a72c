// The names a minted leaf carries: the upstream certificate's DNS and IP
// subjectAltNames, normalised (DNS names are case-insensitive, RFC 4343) and
// sorted so that the same name set always maps to the same cache entry.
// Names are mirrored, never widened: the SNI only fills an absent CN.

import { IpAddress } from '../netstack/wire';
import { SanEntry, UB_COMMON_NAME } from './ca_der';

export class MintError extends Error {}

export interface SanInput {
  type: 'dns' | 'ip';
  value: string;
}

/** RFC 1035 2.3.4 limits; underscores occur in real certificates, so they are allowed. */
const MAX_DNS_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** A leaf must never carry more names than a real public one would (CA/B BR has no cap; large CDNs stay under a few hundred). */
export const MAX_SANS = 1000;

function normalizeDns(raw: string): string {
  const name = raw.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > MAX_DNS_NAME) throw new MintError(`invalid DNS name "${raw}": bad length`);
  const labels = name.split('.');
  const wildcard = labels[0] === '*';
  // RFC 6125 6.4.3: wildcard only as the whole left-most label, and never
  // directly above a single label (browsers reject "*.com").
  if (wildcard && labels.length < 3) throw new MintError(`refusing overly broad wildcard "${raw}"`);
  for (const label of wildcard ? labels.slice(1) : labels) {
    if (!LABEL.test(label)) throw new MintError(`invalid DNS name "${raw}"`);
  }
  return name;
}

function normalizeIp(raw: string): SanEntry {
  const addr = IpAddress.tryParse(raw);
  if (addr === null) throw new MintError(`invalid IP address "${raw}"`);
  return { type: 'ip', value: addr.toString(), bytes: addr.bytes };
}

/** Validated, de-duplicated, sorted SANs (DNS first, then IPs). */
export function normalizeSans(input: ReadonlyArray<SanInput | SanEntry>): SanEntry[] {
  if (input.length > MAX_SANS) throw new MintError(`upstream certificate has ${input.length} names (limit ${MAX_SANS})`);
  const byKey = new Map<string, SanEntry>();
  for (const s of input) {
    const entry: SanEntry = s.type === 'dns' ? { type: 'dns', value: normalizeDns(s.value) } : normalizeIp(s.value);
    byKey.set(sanKey(entry), entry);
  }
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as SanEntry);
}

const sanKey = (s: SanEntry): string => (s.type === 'dns' ? `d:${s.value}` : `i:${s.bytes.toString('hex')}`);

export function sanSetKey(sans: SanEntry[]): string {
  return sans.map(sanKey).join(',');
}

/** RFC 6125 6.4.3 matching of a host against one DNS SAN. */
function dnsMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
}

/**
 * The leaf's CN: the upstream's if it fits ub-common-name, else the SNI when
 * the SANs cover it, else the first DNS SAN; null means an empty subject.
 */
export function chooseCommonName(upstreamCn: string | undefined | null, sni: string | undefined, sans: SanEntry[]): string | null {
  if (upstreamCn && upstreamCn.length <= UB_COMMON_NAME) return upstreamCn;
  const dns = sans.filter((s) => s.type === 'dns').map((s) => s.value);
  if (sni !== undefined) {
    const host = sni.toLowerCase();
    if (host.length <= UB_COMMON_NAME && dns.some((p) => dnsMatches(p, host))) return host;
  }
  return dns.find((d) => d.length <= UB_COMMON_NAME) ?? null;
}
