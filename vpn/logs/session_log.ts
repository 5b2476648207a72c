// `session` records: a device's tunnel coming up, roaming to a new endpoint,
// going down (its session expired, the handshake gave up, it was disabled or
// removed, or the concentrator stopped) and expiring (its --expires passed).
// Fed by the WireGuard device's events and the registry's cuts; a rekey
// (a new handshake every two minutes) is not a new session.
import { monotonicNow } from '../../netstack/clock';
import { PerUserRecordLimit } from './record_limit';
import type { LogFields } from './user_log';

export type SessionEvent = 'up' | 'roam' | 'down' | 'expired';
export type DownReason = 'session_expired' | 'handshake_failed' | 'disabled' | 'removed' | 'shutdown';

/** Who the session is: the peer's public key and its user and device. */
export interface SessionPeer {
  id: string;
  user: string;
  device: string;
}

export interface RecordWriter {
  write(user: string, peer: string, type: string, fields?: LogFields, device?: string): void;
}

export class SessionLog {
  /** Peers with a session up, and since when (wall-clock ms). */
  private readonly up = new Map<string, number>();
  /**
   * Roams are rate-limited per user: any authenticated packet from a new
   * source is a roam, so a device alternating its source port would
   * otherwise write a record per packet.
   */
  private readonly roams: PerUserRecordLimit;

  constructor(
    private readonly records: RecordWriter,
    private readonly now: () => number = Date.now,
    /** Monotonic ms, for the roam rate limit. */
    clock: () => number = monotonicNow,
  ) {
    this.roams = new PerUserRecordLimit(clock);
  }

  get connected(): number {
    return this.up.size;
  }

  handshake(p: SessionPeer, endpoint: string | null): void {
    if (this.up.has(p.id)) return;
    this.up.set(p.id, this.now());
    this.write(p, 'up', { endpoint });
  }

  roamed(p: SessionPeer, from: string | null, to: string): void {
    // The first endpoint of a session is part of `up`, not a roam.
    if (!this.up.has(p.id) || from === null) return;
    const suppressed = this.roams.take(p.user);
    if (suppressed === null) return;
    this.write(p, 'roam', suppressed > 0 ? { endpoint: to, from, suppressed } : { endpoint: to, from });
  }

  ended(p: SessionPeer, reason: DownReason): void {
    const since = this.up.get(p.id);
    if (since === undefined) return;
    this.up.delete(p.id);
    this.write(p, 'down', { reason, durationMs: Math.max(0, this.now() - since) });
  }

  /** The device's expiry passed: refused from now on (its session, if any, ends with it). */
  expired(p: SessionPeer): void {
    const since = this.up.get(p.id);
    this.up.delete(p.id);
    this.write(p, 'expired', since === undefined ? {} : { durationMs: Math.max(0, this.now() - since) });
  }

  /** A clean stop: every open session is recorded as down. */
  shutdown(peers: Iterable<SessionPeer>): void {
    for (const p of peers) this.ended(p, 'shutdown');
  }

  private write(p: SessionPeer, event: SessionEvent, fields: LogFields): void {
    this.records.write(p.user, p.id, 'session', { event, ...fields }, p.device);
  }
}
