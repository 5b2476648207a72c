// Name constraints (RFC 5280 4.2.1.10, 6.1.4(g)): a CA limited to some DNS
// names or address ranges must not vouch for names outside them, whatever
// else is right with the chain. Enforced for dNSName and iPAddress, the forms
// a TLS server is named by; constraints of other forms do not restrict these.

import type { X509Certificate } from 'node:crypto';
import { IpAddress } from '../../netstack/wire';
import { Subtree, certInfo } from '../x509';
import { certLabel } from './cert_info';

/** A description of the first violation in `path` (leaf first, anchor last), or null. */
export function nameConstraintsViolation(path: readonly X509Certificate[]): string | null {
  for (let k = 1; k < path.length; k++) {
    const nc = certInfo(path[k]).nameConstraints;
    if (!nc) continue;
    for (const subject of path.slice(0, k)) {
      const { sanDns, sanIps } = certInfo(subject);
      for (const name of sanDns) {
        const why = check(nc.permitted, nc.excluded, 'dns', (t) => t.kind === 'dns' && dnsWithin(name, t.name));
        if (why) return `"${certLabel(path[k])}" ${why} DNS names; "${certLabel(subject)}" names ${name}`;
      }
      for (const ip of sanIps) {
        const why = check(nc.permitted, nc.excluded, 'ip', (t) => t.kind === 'ip' && ipWithin(ip, t.addr, t.mask));
        if (why) return `"${certLabel(path[k])}" ${why} addresses; "${certLabel(subject)}" names ${formatIp(ip)}`;
      }
    }
  }
  return null;
}

function check(permitted: readonly Subtree[], excluded: readonly Subtree[], kind: Subtree['kind'], within: (t: Subtree) => boolean): string | null {
  if (excluded.some(within)) return 'excludes these';
  const sameForm = permitted.filter((t) => t.kind === kind);
  if (sameForm.length > 0 && !sameForm.some(within)) return 'permits only other';
  return null;
}

/** "example.com" covers itself and its subdomains; ".example.com" only subdomains (common CA usage). */
function dnsWithin(name: string, constraint: string): boolean {
  if (constraint === '') return true;
  if (constraint.startsWith('.')) return name.endsWith(constraint);
  return name === constraint || name.endsWith(`.${constraint}`);
}

function ipWithin(ip: Buffer, addr: Buffer, mask: Buffer): boolean {
  if (ip.length !== addr.length) return false;
  for (let i = 0; i < ip.length; i++) if ((ip[i] & mask[i]) !== (addr[i] & mask[i])) return false;
  return true;
}

/** A SAN of another length is not an IP address; it is shown as hex. */
function formatIp(ip: Buffer): string {
  if (ip.length === 4 || ip.length === 16) return IpAddress.fromBytes(ip).toString();
  return ip.toString('hex');
}
