// The peer registry: mirrors the state store's peers into the WireGuard
// device and the cryptokey routing table, and follows changes made by the CLI
// while the concentrator runs.
import type { FlowOwner } from '../netstack';
import { IpAddress } from '../netstack/wire';
import { AllowedIps } from './allowed_ips';
import { PublicKey, type WgDevice, type WgPeer } from './protocol';
import type { PeerRecord, Store } from './store';

/** What the concentrator attaches to each WireGuard peer. */
export interface PeerTag {
  name: string;
  user: string;
  ipv4: IpAddress;
  ipv6: IpAddress;
  /** Identity handed to the network stack for limits and flow records. */
  owner: FlowOwner;
  /** Fingerprint of the record, to notice changes. */
  revision: string;
}

export class PeerRegistry {
  readonly allowedIps = new AllowedIps<WgPeer>();
  private readonly byPublicKey = new Map<string, WgPeer>();
  private lastDataVersion = -1;

  constructor(
    private readonly store: Store,
    private readonly device: WgDevice,
  ) {}

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
      if (r === undefined || revisionOf(r) !== (peer.tag as PeerTag).revision) {
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
    const tag: PeerTag = {
      name: r.name,
      user: r.user,
      ipv4: IpAddress.parse(r.ipv4),
      ipv6: IpAddress.parse(r.ipv6),
      owner: { id: r.publicKey, user: r.user },
      revision: revisionOf(r),
    };
    const peer = this.device.addPeer({
      publicKey: PublicKey.fromBase64(r.publicKey),
      presharedKey: r.presharedKey ? Buffer.from(r.presharedKey, 'base64') : undefined,
      tag,
    });
    this.byPublicKey.set(r.publicKey, peer);
    this.allowedIps.insert(tag.ipv4, peer);
    this.allowedIps.insert(tag.ipv6, peer);
  }

  private remove(key: string, peer: WgPeer): void {
    const tag = peer.tag as PeerTag;
    this.allowedIps.remove(tag.ipv4, peer);
    this.allowedIps.remove(tag.ipv6, peer);
    this.device.removePeer(peer.publicKey);
    this.byPublicKey.delete(key);
  }
}

function revisionOf(r: PeerRecord): string {
  return `${r.user}|${r.presharedKey ?? ''}|${r.ipv4}|${r.ipv6}`;
}
