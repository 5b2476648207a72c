// The peer registry: mirrors the store's devices into the WireGuard device
// and the cryptokey routing table, and follows changes made by the CLI while
// the concentrator runs. A device whose user is disabled, or that expired,
// stays known to the WireGuard device but refused: its sessions end at once
// and its handshakes are counted as refused, attributable to it.
import type { FlowOwner } from '../../netstack';
import { IpAddress } from '../../netstack/wire';
import { AllowedIps } from '../allowed_ips';
import { PublicKey, wipe, type WgDevice, type WgPeer } from '../protocol';
import { deviceState, listDevices, peerLabel, type DeviceRecord, type DeviceState } from './devices';
import type { Store } from './store';

/** Who a flow belongs to: the device (its public key is the id), its user and its name. */
export interface PeerOwner extends FlowOwner {
  readonly device: string;
}

/**
 * What the concentrator attaches to each WireGuard peer, so every record can
 * name its user and device. Addresses are kept as text (canonical form), not
 * IpAddress objects: one of these exists per configured device, and
 * DESIGN.md allows an idle peer under 4 KB in all.
 */
export interface PeerTag {
  /** The user for the device named "default", else user/device (status.json, configs). */
  name: string;
  user: string;
  device: string;
  ipv4: string;
  ipv6: string;
  /** Identity handed to the network stack for limits and flow records. */
  owner: PeerOwner;
  state: DeviceState;
  /** Wall-clock ms when the concentrator applied `state`: how fast a disable took effect. */
  stateSince: number;
  expiresAt: number | null;
  /** Handshake initiations refused since the state last changed. */
  refusedHandshakes: number;
}

export type TunnelPeer = WgPeer<PeerTag>;
export type TunnelDevice = WgDevice<PeerTag>;

/** Why a device's tunnel was cut: its flows end with this reason. */
export type CutReason = 'disabled' | 'expired' | 'removed';

export interface SyncResult {
  added: string[];
  removed: string[];
  /** Devices now refused (user disabled, or expired), and devices admitted again. */
  refused: string[];
  admitted: string[];
}

/** Where the registry reads devices from: the store, or a fake in tests. */
export interface DeviceSource {
  /** Changes whenever the devices may have changed. */
  dataVersion(): number;
  listDevices(): DeviceRecord[];
}

export function storeSource(store: Store): DeviceSource {
  return { dataVersion: () => store.dataVersion(), listDevices: () => listDevices(store) };
}

export class PeerRegistry {
  readonly allowedIps = new AllowedIps<TunnelPeer>();
  private readonly byPublicKey = new Map<string, TunnelPeer>();
  private lastDataVersion = -1;
  private nextExpiryAt = Infinity;
  private changes = 0;

  constructor(
    private readonly source: DeviceSource,
    private readonly device: TunnelDevice,
    /** Told when an active device's tunnel is cut (refused or removed), to end its flows. */
    private readonly onCut: (tag: PeerTag, why: CutReason) => void = () => undefined,
  ) {}

  /** Counts peers added, removed or changing state: a cheap "did the peer list change" for status.json. */
  get generation(): number {
    return this.changes;
  }

  get size(): number {
    return this.byPublicKey.size;
  }

  /** Re-reads the store when another connection committed, or when a device's expiry has come. */
  /** `now`: wall-clock ms (expiry times are wall-clock). */
  syncIfChanged(now: number): SyncResult | null {
    if (this.source.dataVersion() === this.lastDataVersion && now < this.nextExpiryAt) return null;
    return this.sync(now);
  }

  sync(now: number): SyncResult {
    this.lastDataVersion = this.source.dataVersion();
    const wanted = new Map<string, DeviceRecord>();
    for (const r of this.source.listDevices()) wanted.set(r.publicKey, r);
    const result: SyncResult = { added: [], removed: [], refused: [], admitted: [] };

    for (const [key, peer] of this.byPublicKey) {
      const r = wanted.get(key);
      if (r === undefined || !sameRecord(peer, r)) {
        this.remove(key, peer);
        result.removed.push(peer.tag.name);
      }
    }
    this.nextExpiryAt = Infinity;
    for (const [key, r] of wanted) {
      const state = deviceState(r, now);
      if (state === 'active' && r.expiresAt !== null) this.nextExpiryAt = Math.min(this.nextExpiryAt, r.expiresAt);
      const peer = this.byPublicKey.get(key);
      if (peer === undefined) {
        this.add(r, state, now);
        result.added.push(peerLabel(r.user, r.name));
      } else if (peer.tag.expiresAt !== r.expiresAt || peer.tag.state !== state) {
        peer.tag.expiresAt = r.expiresAt;
        if (peer.tag.state === state) continue;
        this.setState(peer, state, now);
        (state === 'active' ? result.admitted : result.refused).push(peer.tag.name);
      }
    }
    return result;
  }

  private add(r: DeviceRecord, state: DeviceState, now: number): void {
    const ipv4 = IpAddress.parse(r.ipv4);
    const ipv6 = IpAddress.parse(r.ipv6);
    const name = peerLabel(r.user, r.name);
    const tag: PeerTag = {
      name,
      user: r.user,
      device: r.name,
      ipv4: ipv4.toString(),
      ipv6: ipv6.toString(),
      owner: { id: r.publicKey, user: r.user, device: r.name },
      state: 'active',
      stateSince: now,
      expiresAt: r.expiresAt,
      refusedHandshakes: 0,
    };
    const psk = r.presharedKey ? Buffer.from(r.presharedKey, 'base64') : undefined;
    const peer = this.device.addPeer({ publicKey: PublicKey.fromBase64(r.publicKey), presharedKey: psk }, tag);
    if (psk) wipe(psk);
    this.byPublicKey.set(r.publicKey, peer);
    this.changes++;
    if (state === 'active') this.route(peer);
    else this.setState(peer, state, now);
  }

  /** Refuses or admits a known device; a refused one has no routes, so no packet reaches it. */
  private setState(peer: TunnelPeer, state: DeviceState, now: number): void {
    const tag = peer.tag;
    const wasActive = tag.state === 'active';
    tag.state = state;
    tag.stateSince = now;
    tag.refusedHandshakes = 0;
    this.changes++;
    if (state === 'active') {
      this.device.admitPeer(peer);
      this.route(peer);
      return;
    }
    this.device.refusePeer(peer, state);
    if (wasActive) {
      this.unroute(peer);
      this.onCut(tag, state);
    }
  }

  /** Also for a changed record (lease, key material, owner): its sessions and flows start over. */
  private remove(key: string, peer: TunnelPeer): void {
    const active = peer.tag.state === 'active';
    if (active) this.unroute(peer);
    this.device.removePeer(peer.publicKey);
    this.byPublicKey.delete(key);
    this.changes++;
    if (active) this.onCut(peer.tag, 'removed');
  }

  private route(peer: TunnelPeer): void {
    this.allowedIps.insert(IpAddress.parse(peer.tag.ipv4), peer);
    this.allowedIps.insert(IpAddress.parse(peer.tag.ipv6), peer);
  }

  private unroute(peer: TunnelPeer): void {
    this.allowedIps.remove(IpAddress.parse(peer.tag.ipv4), peer);
    this.allowedIps.remove(IpAddress.parse(peer.tag.ipv6), peer);
  }
}

/** Whether the running peer still matches its record (user, device, addresses, preshared key). */
function sameRecord(peer: TunnelPeer, r: DeviceRecord): boolean {
  const tag = peer.tag;
  if (r.user !== tag.user || r.name !== tag.device || !sameAddress(r.ipv4, tag.ipv4) || !sameAddress(r.ipv6, tag.ipv6)) return false;
  // No preshared key is the all-zero key (whitepaper §5.4.3: Q = 0^32).
  const psk = r.presharedKey ? Buffer.from(r.presharedKey, 'base64') : Buffer.alloc(32);
  const same = psk.equals(peer.handshake.presharedKey);
  wipe(psk);
  return same;
}

function sameAddress(text: string, canonical: string): boolean {
  return text === canonical || IpAddress.tryParse(text)?.toString() === canonical;
}
