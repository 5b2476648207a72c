// Cryptokey routing (whitepaper §2): each peer owns the tunnel addresses
// leased to it. Inbound, a decrypted packet must come from one of its own
// addresses; outbound, a packet goes to the peer that owns its destination.
// Leases are host addresses, so an exact-match map is the whole table.
import { addressKeyOf, IpAddress, type AddressKey, type IpFamily } from '../netstack/wire';

export class AllowedIps<P> {
  private readonly byAddress = new Map<AddressKey, P>();

  insert(address: IpAddress, peer: P): void {
    this.byAddress.set(address.key, peer);
  }

  remove(address: IpAddress, peer: P): void {
    if (this.byAddress.get(address.key) === peer) this.byAddress.delete(address.key);
  }

  /** The peer owning the address at buf[offset..] (packet bytes, no allocation). */
  lookup(buf: Buffer, offset: number, family: IpFamily): P | undefined {
    return this.byAddress.get(addressKeyOf(buf, offset, family));
  }

  get size(): number {
    return this.byAddress.size;
  }
}
