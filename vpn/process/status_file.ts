// status.json, kept cheap with many peers. The file is rewritten only when
// something in it changed, and with many peers at most every
// peers / STATUS_PEERS_PER_SECOND seconds; in between only its mtime is
// refreshed, which is what `sightline status` reads as "the concentrator is
// alive". Rewriting 1,000 idle peers every second made ~300 KB of garbage a
// second for nothing (measured as RSS drift in the idle-peer benchmark).
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import type { DeviceState, TunnelPeer } from '../control';
import type { WgPeer } from '../protocol';

/** Peers serialised per second of status interval: 10,000 peers → every 5 s. */
const STATUS_PEERS_PER_SECOND = 2000;
/** Rewritten at least this often even when nothing seemed to change (bounds a fingerprint collision). */
const STATUS_FULL_REWRITE_MS = 30_000;

export type StatusWrite = 'written' | 'touched';

export class StatusFile {
  private lastFingerprint: string | null = null;
  private lastWriteAt = -Infinity;

  constructor(
    private readonly file: string,
    private readonly baseIntervalMs: number,
  ) {}

  /**
   * Writes `render()` when `fingerprint` differs from the last written one
   * and the interval for `peers` peers has passed; touches the file otherwise.
   * Throws what the file system throws.
   */
  update(now: number, peers: number, fingerprint: string, render: () => string): StatusWrite {
    const interval = Math.max(this.baseIntervalMs, (peers / STATUS_PEERS_PER_SECOND) * 1000);
    const since = now - this.lastWriteAt;
    const changed = fingerprint !== this.lastFingerprint;
    if ((changed && since >= interval) || since >= STATUS_FULL_REWRITE_MS) {
      this.writeNow(render);
      this.lastFingerprint = fingerprint;
      this.lastWriteAt = now;
      return 'written';
    }
    const t = new Date();
    utimesSync(this.file, t, t);
    return 'touched';
  }

  /** Replaces the file at once (atomically), whatever the interval; throws what the file system throws. */
  writeNow(render: () => string): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, render(), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/**
 * A number that changes whenever a peer's line in status.json would:
 * traffic, session, handshake age in whole seconds, endpoint. Computed
 * without allocating, unlike the JSON it stands for.
 */
export function peersFingerprint(peers: Iterable<WgPeer<unknown>>, now: number): number {
  let h = 0x811c9dc5;
  for (const p of peers) {
    h = mix(h, p.rxBytes);
    h = mix(h, p.txBytes);
    h = mix(h, p.hasSession(now) ? 1 : 0);
    h = mix(h, p.lastHandshakeAt === undefined ? -1 : Math.round((now - p.lastHandshakeAt) / 1000));
    const ep = p.endpoint;
    if (ep === undefined) {
      h = mix(h, -1);
    } else {
      h = mix(h, ep.port);
      for (let i = 0; i < ep.address.length; i++) h = mix(h, ep.address.charCodeAt(i));
    }
  }
  return h >>> 0;
}

/** FNV-1a step over both 32-bit halves of a (non-negative or small negative) number. */
function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x | 0), 0x01000193);
  return Math.imul(h ^ Math.floor(x / 0x100000000), 0x01000193);
}

/** One device's line in status.json: the store's view plus the live session. */
export interface PeerStatus {
  /** The user for the device named "default", else user/device. */
  name: string;
  user: string;
  device: string;
  publicKey: string;
  ipv4: string;
  ipv6: string;
  state: DeviceState;
  /** When the concentrator applied `state` (ISO 8601). */
  stateSince: string;
  expiresAt: string | null;
  endpoint: string | null;
  session: boolean;
  lastHandshakeSecondsAgo: number | null;
  lastHandshakeAt: string | null;
  rxBytes: number;
  txBytes: number;
  /** Handshakes refused since `stateSince` (disabled or expired). */
  refusedHandshakes: number;
}

/** `now` is the monotonic clock the device runs on; wall times are derived from it. */
export function peerStatus(p: TunnelPeer, now: number): PeerStatus {
  const tag = p.tag;
  const wallNow = Date.now();
  return {
    name: tag.name,
    user: tag.user,
    device: tag.device,
    publicKey: tag.owner.id,
    ipv4: tag.ipv4,
    ipv6: tag.ipv6,
    state: tag.state,
    stateSince: new Date(tag.stateSince).toISOString(),
    expiresAt: tag.expiresAt === null ? null : new Date(tag.expiresAt).toISOString(),
    endpoint: p.endpoint ? `${p.endpoint.address}:${p.endpoint.port}` : null,
    session: p.hasSession(now),
    lastHandshakeSecondsAgo: p.lastHandshakeAt === undefined ? null : Math.round((now - p.lastHandshakeAt) / 1000),
    lastHandshakeAt: p.lastHandshakeAt === undefined ? null : new Date(wallNow - (now - p.lastHandshakeAt)).toISOString(),
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    refusedHandshakes: tag.refusedHandshakes,
  };
}
