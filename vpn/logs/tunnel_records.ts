// The concentrator's record writers in one place: the per-user log, the
// session records fed by WireGuard device events and tunnel cuts, the DNS
// records fed by the forwarder, and the device names that every record
// carries. The concentrator forwards events here; this file decides what is
// written.
import type { Config } from '../config';
import type { CutReason, PeerTag, TunnelPeer } from '../control';
import type { DnsOutcome } from '../dns';
import { endpointText, type DeviceEvent } from '../protocol';
import { DeviceNames } from './device_names';
import { DnsLog, dnsQuestion, type DnsAsker } from './dns_log';
import { SessionLog } from './session_log';
import { UserLog } from './user_log';

export class TunnelRecords {
  readonly userLog: UserLog;
  readonly sessions: SessionLog;
  private readonly dns: DnsLog;
  private readonly names = new DeviceNames();

  constructor(dataDir: string, config: Config) {
    this.userLog = new UserLog({
      dataDir,
      maxBytes: config.log.rotate.maxBytes,
      retentionDays: config.log.retentionDays,
      deviceOf: (peer) => this.names.get(peer),
    });
    this.sessions = new SessionLog(this.userLog);
    this.dns = new DnsLog(this.userLog);
  }

  /** After every registry change: records of these peers name their devices. */
  peersChanged(peers: Iterable<TunnelPeer>, count: number): void {
    this.names.refresh(peers, count);
  }

  deviceEvent(e: DeviceEvent<PeerTag>): void {
    switch (e.type) {
      case 'handshake_complete':
        this.sessions.handshake(e.peer.tag.owner, e.peer.endpoint ? endpointText(e.peer.endpoint) : null);
        break;
      case 'endpoint_changed':
        this.sessions.roamed(e.peer.tag.owner, e.from ? endpointText(e.from) : null, endpointText(e.to));
        break;
      case 'session_expired':
        this.sessions.ended(e.peer.tag.owner, 'session_expired');
        break;
      case 'handshake_failed':
        this.sessions.ended(e.peer.tag.owner, 'handshake_failed');
        break;
      default:
        break;
    }
  }

  /** A device was disabled, expired or removed while active. */
  tunnelCut(tag: PeerTag, why: CutReason): void {
    if (why === 'expired') this.sessions.expired(tag.owner);
    else this.sessions.ended(tag.owner, why);
  }

  /**
   * Wraps one DNS query, asked at `now`, for the forwarder's `onDone`: the
   * question is read now (the packet buffer is reused later), the record
   * written when done.
   */
  dnsQuery(owner: DnsAsker, query: Buffer, now: number): (outcome: DnsOutcome, doneAt: number) => void {
    const question = dnsQuestion(query);
    return (outcome, doneAt) => this.dns.exchange(owner, question, outcome, doneAt - now);
  }

  /** A clean stop: open sessions are recorded as down, then every file is flushed and closed. */
  async close(peers: Iterable<TunnelPeer>): Promise<void> {
    this.sessions.shutdown([...peers].map((p) => p.tag.owner));
    await this.userLog.close();
  }
}
