// A UDP peer address as the socket layer reports it.
import { IpAddress } from '../../netstack/wire';

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

/** The endpoint's address without its zone (fe80::1%eth0), or null when the text does not parse. */
export function endpointAddress(e: Endpoint): IpAddress | null {
  const zone = e.address.indexOf('%');
  return IpAddress.tryParse(zone >= 0 ? e.address.slice(0, zone) : e.address);
}

/**
 * Source address bytes ‖ port (16-bit little-endian, as wireguard-go's
 * netip.AddrPort encoding): the A_m' that a cookie is bound to (§5.4.7).
 * Anything the parser does not recognise is bound by its text, which is still
 * a stable per-source value.
 */
export function endpointBytes(e: Endpoint): Buffer {
  const ip = endpointAddress(e);
  const addr = ip !== null ? ip.bytes : Buffer.from(e.address, 'utf8');
  const out = Buffer.allocUnsafe(addr.length + 2);
  addr.copy(out);
  out.writeUInt16LE(e.port & 0xffff, addr.length);
  return out;
}
