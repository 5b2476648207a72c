// What happens when a peer's timers expire (whitepaper §6; wireguard-go
// timers.go expired*): handshake retransmission and giving up, keepalives,
// a new handshake after silence, erasing keys, and the end of a session.
// The deadlines themselves are kept by PeerTimers (timers.ts).
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME } from './constants';
import type { DeviceCore } from './core';
import type { WgPeer } from './peer';
import { sendHandshakeInitiation, sendKeepalive } from './send';

/** Runs every timer of `peer` that is due at `now`. */
export function runExpiredTimers<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number): void {
  const t = peer.timers;
  if (t.retransmitHandshakeAt <= now) {
    t.retransmitHandshakeAt = Infinity;
    if (t.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      // §6.4: give up after REKEY_ATTEMPT_TIME; staged packets go with it.
      t.sendKeepaliveAt = Infinity;
      peer.clearStaged();
      if (t.zeroKeyMaterialAt === Infinity) t.zeroKeyMaterialAt = now + 3 * REJECT_AFTER_TIME;
      core.emit({ type: 'handshake_failed', peer });
    } else {
      t.handshakeAttempts++;
      sendHandshakeInitiation(core, peer, now, true);
    }
  }
  if (t.sendKeepaliveAt <= now) {
    t.sendKeepaliveAt = Infinity;
    sendKeepalive(core, peer, now);
    if (t.needAnotherKeepalive) {
      t.needAnotherKeepalive = false;
      t.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
    }
  }
  if (t.newHandshakeAt <= now) {
    // §6.5: we sent data and heard nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
    t.newHandshakeAt = Infinity;
    sendHandshakeInitiation(core, peer, now, false);
  }
  if (t.zeroKeyMaterialAt <= now) {
    t.zeroKeyMaterialAt = Infinity;
    core.zeroKeyMaterial(peer);
  }
  if (t.persistentKeepaliveAt <= now) {
    t.persistentKeepaliveAt = Infinity;
    if (t.persistentKeepaliveInterval > 0) sendKeepalive(core, peer, now);
  }
  if (peer.sessionUp && !peer.hasSession(now) && !(peer.next && !peer.next.isExpired(now))) {
    peer.sessionUp = false;
    core.emit({ type: 'session_expired', peer });
  }
}
