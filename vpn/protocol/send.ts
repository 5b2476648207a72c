// Outbound (wireguard-go send.go): transport messages for the stack's
// packets, keepalives, staged packets waiting for a session, and handshake
// initiations, with the §6.2 and §6.4 rules on when to (re)key.
import { KEY_LEN, REKEY_AFTER_TIME, REKEY_TIMEOUT } from './constants';
import type { DeviceCore } from './core';
import type { Endpoint } from './endpoint';
import type { Keypair } from './keypair';
import { createInitiation, tai64n } from './noise';
import type { WgPeer } from './peer';

const EMPTY = Buffer.alloc(0);

/** Encrypts `packet` for `peer`, or stages it and starts a handshake when there is no usable session. */
export function sendPacket<T>(core: DeviceCore<T>, peer: WgPeer<T>, packet: Buffer, now: number): void {
  if (peer.refused !== null) return core.count(`send_refused_${peer.refused}`);
  const kp = peer.current;
  if (peer.staged.length === 0 && kp !== null && peer.endpoint && !kp.isExpired(now) && !kp.sendExhausted()) {
    sendTransport(core, peer, kp, packet, now);
    keepKeyFreshSending(core, peer, now);
    return;
  }
  if (!peer.hasSession(now)) core.count('no_session'); // staged until a handshake completes
  if (!peer.stage(packet)) core.count('staged_overflow');
  sendStagedPackets(core, peer, now);
}

function sendTransport<T>(core: DeviceCore<T>, peer: WgPeer<T>, kp: Keypair, packet: Buffer, now: number): void {
  const msg = core.out.sendTransport(kp, packet, peer.endpoint as Endpoint);
  peer.txBytes += msg.sealedLength;
  const t = peer.timers;
  if (kp.sendExhausted()) t.sendExhausted(now);
  t.anyAuthenticatedPacketTraversal(now);
  t.anyAuthenticatedPacketSent();
  if (packet.length !== 0) t.dataSent(now);
}

/** wireguard-go SendStagedPackets: flush the queue with the current keypair, or handshake for one. */
export function sendStagedPackets<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number): void {
  const kp = peer.current;
  while (peer.staged.length > 0) {
    if (kp === null || kp.isExpired(now) || kp.sendExhausted() || !peer.endpoint) {
      sendHandshakeInitiation(core, peer, now, false);
      return;
    }
    sendTransport(core, peer, kp, peer.takeStaged() as Buffer, now);
  }
  keepKeyFreshSending(core, peer, now);
}

/** A keepalive is an empty transport message; it also flushes staged packets (wireguard-go SendKeepalive). */
export function sendKeepalive<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number): void {
  if (peer.staged.length === 0) {
    peer.stageOwned(EMPTY);
    core.count('keepalive_sent');
  }
  sendStagedPackets(core, peer, now);
}

/** §6.2: the initiator rekeys after REKEY_AFTER_TIME; either side after REKEY_AFTER_MESSAGES. */
function keepKeyFreshSending<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number): void {
  const kp = peer.current;
  if (kp && (kp.sendPastRekeyLimit() || (kp.isInitiator && now - kp.createdAt >= REKEY_AFTER_TIME))) {
    sendHandshakeInitiation(core, peer, now, false);
  }
}

export function sendHandshakeInitiation<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number, isRetry: boolean): void {
  if (peer.refused !== null) return;
  if (!isRetry) peer.timers.handshakeAttempts = 0;
  // §6.4: at most one initiation per REKEY_TIMEOUT.
  if (now - peer.lastSentHandshakeAt < REKEY_TIMEOUT) return;
  if (!peer.endpoint) {
    core.drop('no_endpoint', peer);
    return;
  }
  peer.lastSentHandshakeAt = now;
  core.indexes.releaseHandshake(peer);
  const idx = core.indexes.allocate(peer, null);
  const ephemeral = Buffer.from(core.random(KEY_LEN));
  const msg = createInitiation(core.identity, peer.handshake, idx, ephemeral, tai64n(core.wallClock()));
  if (typeof msg === 'string') {
    core.indexes.free(idx);
    core.drop(msg, peer);
    return;
  }
  peer.cookies.addMacs(msg, now);
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketSent();
  peer.timers.handshakeInitiated(now);
  peer.txBytes += msg.length;
  core.count('handshake_initiation_sent');
  core.out.sendDatagram(msg, peer.endpoint);
}
