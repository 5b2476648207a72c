// Shared by the netstack egress tests (socket and routed): the concentrator's
// addresses and guard, and what an ICMP packet sent to a client says.
import { EgressGuard } from '../../../netstack';
import { Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View, IpAddress, IpCidr, isWireError, parseIpPacket, verifyUpperLayerChecksum } from '../../../netstack/wire';

export const SERVER4 = IpAddress.parse('10.77.0.1');
export const SERVER6 = IpAddress.parse('fd77::1');
export const ALICE4 = IpAddress.parse('10.77.0.2');
export const ALICE6 = IpAddress.parse('fd77::2');

/** The guard of a concentrator with pools 10.77.0.0/24 and fd77::/64 on a host at 192.0.2.5/24; `allow` as egress.allow. */
export function testGuard(allow: string[] = []): EgressGuard {
  return new EgressGuard({
    tunnelAddresses: [SERVER4, SERVER6],
    tunnelPools: [IpCidr.parse('10.77.0.0/24'), IpCidr.parse('fd77::/64')],
    listener: { address: null, port: 51820 },
    hostInterfaces: [IpCidr.parse('192.0.2.5/24')],
    allow: allow.map((c) => IpCidr.parse(c)),
  });
}

/** The ICMP packet sent to the client: its source, destination, kind and code (checksums verified). */
export function icmpOf(packet: Buffer): { src: string; dst: string; type: string; code: number } {
  const pkt = parseIpPacket(packet);
  if (isWireError(pkt)) throw new Error(pkt.reason);
  expect(verifyUpperLayerChecksum(pkt)).toBe(true);
  const src = IpAddress.fromBytes(pkt.src).toString();
  const dst = IpAddress.fromBytes(pkt.dst).toString();
  if (pkt.family === 4) {
    const v = Icmpv4View.parse(pkt.payload);
    if (isWireError(v)) throw new Error(v.reason);
    const r = Icmpv4Repr.parse(v);
    if (isWireError(r)) throw new Error(r.reason);
    const m = r.message;
    return { src, dst, type: m.kind, code: 'code' in m ? m.code : -1 };
  }
  const v = Icmpv6View.parse(pkt.payload);
  if (isWireError(v)) throw new Error(v.reason);
  const m = Icmpv6Repr.parse(v).message;
  return { src, dst, type: m.kind, code: 'code' in m ? m.code : -1 };
}
