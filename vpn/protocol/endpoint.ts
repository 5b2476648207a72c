// A UDP peer address as the socket layer reports it.
import { isIPv4, isIPv6 } from 'node:net';

export interface Endpoint {
  address: string;
  port: number;
}

export function endpointEquals(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.port === b.port && a.address === b.address;
}

export function endpointText(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/**
 * Source address bytes ‖ port (16-bit little-endian, as wireguard-go's
 * netip.AddrPort encoding): the A_m' that a cookie is bound to (§5.4.7).
 * Anything the parser does not recognise is bound by its text, which is still
 * a stable per-source value.
 */
export function endpointBytes(e: Endpoint): Buffer {
  let host = e.address;
  const zone = host.indexOf('%');
  if (zone >= 0) host = host.slice(0, zone);
  let addr: Buffer;
  if (isIPv4(host)) addr = Buffer.from(host.split('.').map(Number));
  else if (isIPv6(host)) addr = ipv6Bytes(host);
  else addr = Buffer.from(e.address, 'utf8');
  const out = Buffer.allocUnsafe(addr.length + 2);
  addr.copy(out);
  out.writeUInt16LE(e.port & 0xffff, addr.length);
  return out;
}

function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  // Trailing dotted IPv4 (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const o = tail.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, rest] = s.split('::');
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined
    ? headGroups
    : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i] ?? '0', 16) & 0xffff, 2 * i);
  return out;
}
