// Cryptokey routing (whitepaper §2): each peer owns the tunnel addresses
// leased to it. Inbound, a decrypted packet must come from one of its own
// addresses; outbound, a packet goes to the peer that owns its destination.
// Leases are host addresses, so an exact-match map is the whole table.
// Packets are read through netstack/wire (the header's named fields), with
// no allocation: this runs for every packet in both directions.
import { ipAddressKey, IpAddress, type AddressKey } from '../netstack/wire';

export class AllowedIps<P> {
  private readonly byAddress = new Map<AddressKey, P>();

  insert(address: IpAddress, peer: P): void {
    this.byAddress.set(address.key, peer);
  }

  remove(address: IpAddress, peer: P): void {
    if (this.byAddress.get(address.key) === peer) this.byAddress.delete(address.key);
  }

  /** The peer owning `address`. */
  owner(address: IpAddress): P | undefined {
    return this.byAddress.get(address.key);
  }

  /**
   * Why `peer` may not have sent `packet` (the reason it is dropped and
   * counted under), or null when it may: an IP packet whose source is one of
   * the peer's own addresses (§2, the anti-spoofing check).
   */
  refusesSource(packet: Buffer, peer: P): 'bad_inner_packet' | 'spoofed_source' | null {
    const src = ipAddressKey(packet, 'src');
    if (src === null) return 'bad_inner_packet';
    return this.byAddress.get(src) === peer ? null : 'spoofed_source';
  }

  /** The peer a packet into the tunnel goes to: the owner of its destination. */
  destinationOwner(packet: Buffer): P | undefined {
    const dst = ipAddressKey(packet, 'dst');
    return dst === null ? undefined : this.byAddress.get(dst);
  }

  get size(): number {
    return this.byAddress.size;
  }
}
