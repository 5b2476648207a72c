// The peer registry: mirrors the state store's peers into the WireGuard
// device and the cryptokey routing table, and follows changes made by the CLI
// while the concentrator runs.
import type { FlowOwner } from '../netstack';
import { IpAddress } from '../netstack/wire';
import { AllowedIps } from './allowed_ips';
import { PublicKey, wipe, type WgDevice, type WgPeer } from './protocol';
import type { PeerRecord, Store } from './store';

/**
 * What the concentrator attaches to each WireGuard peer. Addresses are kept
 * as text (canonical form), not IpAddress objects: one of these exists per
 * configured peer, and DESIGN.md allows an idle peer under 4 KB in all.
 */
export interface PeerTag {
  name: string;
  user: string;
  ipv4: string;
  ipv6: string;
  /** Identity handed to the network stack for limits and flow records. */
  owner: FlowOwner;
}

export class PeerRegistry {
  readonly allowedIps = new AllowedIps<WgPeer>();
  private readonly byPublicKey = new Map<string, WgPeer>();
  private lastDataVersion = -1;
  private changes = 0;

  constructor(
    private readonly store: Store,
    private readonly device: WgDevice,
  ) {}

  /** Counts peers added or removed: a cheap "did the peer list change" for status.json. */
  get generation(): number {
    return this.changes;
  }

  get size(): number {
    return this.byPublicKey.size;
  }

  /** Re-reads the store only when another connection committed since last time. */
  syncIfChanged(): { added: string[]; removed: string[] } | null {
    const v = this.store.dataVersion();
    if (v === this.lastDataVersion) return null;
    return this.sync();
  }

  sync(): { added: string[]; removed: string[] } {
    this.lastDataVersion = this.store.dataVersion();
    const wanted = new Map<string, PeerRecord>();
    for (const r of this.store.listPeers()) if (!r.disabled) wanted.set(r.publicKey, r);
    const added: string[] = [];
    const removed: string[] = [];

    for (const [key, peer] of this.byPublicKey) {
      const r = wanted.get(key);
      if (r === undefined || !sameRecord(peer, r)) {
        this.remove(key, peer);
        removed.push((peer.tag as PeerTag).name);
      }
    }
    for (const [key, r] of wanted) {
      if (this.byPublicKey.has(key)) continue;
      this.add(r);
      added.push(r.name);
    }
    return { added, removed };
  }

  private add(r: PeerRecord): void {
    const ipv4 = IpAddress.parse(r.ipv4);
    const ipv6 = IpAddress.parse(r.ipv6);
    // The user is usually the peer's name: keep one string for both.
    const user = r.user === r.name ? r.name : r.user;
    const tag: PeerTag = {
      name: r.name,
      user,
      ipv4: ipv4.toString(),
      ipv6: ipv6.toString(),
      owner: { id: r.publicKey, user },
    };
    const psk = r.presharedKey ? Buffer.from(r.presharedKey, 'base64') : undefined;
    const peer = this.device.addPeer({ publicKey: PublicKey.fromBase64(r.publicKey), presharedKey: psk, tag });
    if (psk) wipe(psk);
    this.byPublicKey.set(r.publicKey, peer);
    this.changes++;
    this.allowedIps.insert(ipv4, peer);
    this.allowedIps.insert(ipv6, peer);
  }

  private remove(key: string, peer: WgPeer): void {
    const tag = peer.tag as PeerTag;
    this.allowedIps.remove(IpAddress.parse(tag.ipv4), peer);
    this.allowedIps.remove(IpAddress.parse(tag.ipv6), peer);
    this.device.removePeer(peer.publicKey);
    this.byPublicKey.delete(key);
    this.changes++;
  }
}

/** Whether the running peer still matches its record (user, addresses, preshared key). */
function sameRecord(peer: WgPeer, r: PeerRecord): boolean {
  const tag = peer.tag as PeerTag;
  if (r.user !== tag.user || !sameAddress(r.ipv4, tag.ipv4) || !sameAddress(r.ipv6, tag.ipv6)) return false;
  // No preshared key is the all-zero key (whitepaper §5.4.3: Q = 0^32).
  const psk = r.presharedKey ? Buffer.from(r.presharedKey, 'base64') : Buffer.alloc(32);
  const same = psk.equals(peer.handshake.presharedKey);
  wipe(psk);
  return same;
}

function sameAddress(text: string, canonical: string): boolean {
  return text === canonical || IpAddress.tryParse(text)?.toString() === canonical;
}
