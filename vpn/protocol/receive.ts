// Inbound messages (wireguard-go receive.go): validate length and type, MACs
// and cookies for handshakes, then hand over to noise.ts / transport.ts.
// Every rejection is a counted reason; nothing here throws on bad input.
import {
  MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE, MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_MIN_SIZE, KEY_LEN, KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_TIMEOUT,
} from './constants';
import { COOKIE_RECEIVER } from './cookie';
import type { DeviceCore } from './core';
import type { Endpoint } from './endpoint';
import { consumeInitiation, consumeResponse, createResponse, INIT_SENDER, RESP_RECEIVER, RESP_SENDER } from './noise';
import { sourceKey } from './ratelimit';
import type { WgPeer } from './peer';
import { counterExhausted } from './replay';
import { sendHandshakeInitiation, sendKeepalive, sendStagedPackets } from './send';
import { innerPacketLength, openTransport, TRANSPORT_COUNTER, TRANSPORT_RECEIVER } from './transport';

export function receiveDatagram<T>(core: DeviceCore<T>, msg: Buffer, from: Endpoint, now: number): void {
  if (msg.length < 4) return core.drop('bad_length');
  // The first byte is the type and the next three are reserved zero bytes,
  // so reading a little-endian u32 checks both (as wireguard-go does).
  const type = msg.readUInt32LE(0);
  switch (type) {
    case MESSAGE_TRANSPORT:
      if (msg.length < MESSAGE_TRANSPORT_MIN_SIZE) return core.drop('bad_length');
      return receiveTransport(core, msg, from, now);
    case MESSAGE_INITIATION:
      if (msg.length !== MESSAGE_INITIATION_SIZE) return core.drop('bad_length');
      if (!checkHandshakeMacs(core, msg, INIT_SENDER, from, now)) return;
      return receiveInitiation(core, msg, from, now);
    case MESSAGE_RESPONSE:
      if (msg.length !== MESSAGE_RESPONSE_SIZE) return core.drop('bad_length');
      if (!checkHandshakeMacs(core, msg, RESP_SENDER, from, now)) return;
      return receiveResponse(core, msg, from, now);
    case MESSAGE_COOKIE_REPLY:
      if (msg.length !== MESSAGE_COOKIE_REPLY_SIZE) return core.drop('bad_length');
      return receiveCookieReply(core, msg, now);
    default:
      return core.drop('unknown_message_type');
  }
}

/**
 * §5.3: mac1 is always required; under load, a handshake message without a
 * valid mac2 is answered with a cookie reply instead of being processed, so
 * a flood from spoofed addresses costs us no Diffie-Hellman, and one with a
 * valid mac2 still counts against its source's rate (ratelimit.ts), so a
 * flood from an address of the sender's own costs us only a few per second.
 */
function checkHandshakeMacs<T>(core: DeviceCore<T>, msg: Buffer, senderOffset: number, from: Endpoint, now: number): boolean {
  if (!core.cookieChecker.checkMac1(msg)) {
    core.drop('bad_mac1');
    return false;
  }
  if (!core.noteHandshakeAndCheckLoad(now)) return true;
  if (!core.cookieChecker.checkMac2(msg, from, now)) {
    core.out.sendDatagram(core.cookieChecker.createReply(msg, senderOffset, from, now), from);
    core.drop('bad_mac2_cookie_sent');
    return false;
  }
  if (!core.handshakeLimiter.allow(sourceKey(from), now)) {
    core.drop('handshake_rate_limited');
    return false;
  }
  return true;
}

function receiveInitiation<T>(core: DeviceCore<T>, msg: Buffer, from: Endpoint, now: number): void {
  const hs = consumeInitiation(core.identity, msg, now, core.lookupHandshake);
  if (typeof hs === 'string') return core.drop(hs);
  const peer = core.peerForHandshake(hs);
  if (!peer) return core.drop('unknown_peer');
  if (peer.refused !== null) {
    // Authenticated and fresh (consumeInitiation checked the timestamp), so the count is the peer's own.
    peer.handshake.clear();
    return core.drop(`handshake_refused_${peer.refused}`, peer);
  }
  peer.rxBytes += msg.length;
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  core.updateEndpoint(peer, from);
  // A pending initiation of ours to this peer is superseded by theirs.
  core.indexes.releaseHandshake(peer);
  const idx = core.indexes.allocate(peer, null);
  const response = createResponse(hs, idx, Buffer.from(core.random(KEY_LEN)));
  if (typeof response === 'string') {
    core.indexes.free(idx);
    return core.drop(response, peer);
  }
  if (!core.beginSession(peer, now)) return core.drop('unexpected_response', peer);
  peer.cookies.addMacs(response, now);
  peer.lastSentHandshakeAt = now; // the response counts as our handshake attempt (no crossing initiation)
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketSent();
  peer.txBytes += response.length;
  core.count('handshake_response_sent');
  core.out.sendDatagram(response, from);
}

function receiveResponse<T>(core: DeviceCore<T>, msg: Buffer, from: Endpoint, now: number): void {
  const entry = core.indexes.get(msg.readUInt32LE(RESP_RECEIVER));
  if (!entry || entry.keypair !== null) return core.drop('unknown_receiver_index');
  const peer = entry.peer;
  const hs = consumeResponse(core.identity, peer.handshake, msg);
  if (typeof hs === 'string') return core.drop(hs, peer);
  peer.rxBytes += msg.length;
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  core.updateEndpoint(peer, from);
  if (!core.beginSession(peer, now)) return core.drop('unexpected_response', peer);
  core.handshakeComplete(peer, now);
  // Confirms the session to the responder: staged data, or else a keepalive.
  sendKeepalive(core, peer, now);
}

function receiveCookieReply<T>(core: DeviceCore<T>, msg: Buffer, now: number): void {
  const entry = core.indexes.get(msg.readUInt32LE(COOKIE_RECEIVER));
  if (!entry) return core.drop('unknown_receiver_index');
  // The retransmission timer resends with mac2; nothing is sent from here (§5.4.7).
  if (!entry.peer.cookies.consumeReply(msg, now)) return core.drop('bad_cookie_reply', entry.peer);
  core.count('cookie_reply_received');
}

function receiveTransport<T>(core: DeviceCore<T>, msg: Buffer, from: Endpoint, now: number): void {
  const entry = core.indexes.get(msg.readUInt32LE(TRANSPORT_RECEIVER));
  const kp = entry?.keypair;
  if (!entry || !kp) return core.drop('unknown_receiver_index');
  const peer = entry.peer;
  const lo = msg.readUInt32LE(TRANSPORT_COUNTER);
  const hi = msg.readUInt32LE(TRANSPORT_COUNTER + 4);
  if (kp.isExpired(now) || counterExhausted(hi, lo)) return core.drop('expired_keypair', peer);
  const plain = openTransport(kp, msg, core.opened);
  if (plain === null) return core.drop('decrypt_failed', peer);
  // After authentication, or a forger could mark counters as used.
  if (!kp.replay.validate(hi, lo)) return core.drop('replay', peer);
  if (peer.next === kp) {
    const dropped = peer.promoteNext();
    if (dropped) core.indexes.deleteKeypair(dropped);
    core.handshakeComplete(peer, now);
    sendStagedPackets(core, peer, now);
  }
  keepKeyFreshReceiving(core, peer, now);
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  core.updateEndpoint(peer, from);
  peer.rxBytes += msg.length;
  if (plain.length === 0) {
    core.count('keepalive_received');
    return;
  }
  peer.timers.dataReceived(now);
  const len = innerPacketLength(plain);
  if (len < 0) return core.drop('bad_inner_packet', peer);
  core.out.packet = len === plain.length ? plain : plain.subarray(0, len);
  core.out.peer = peer;
}

/** §6.2: an initiator receiving on a keypair close to REJECT_AFTER_TIME rekeys before it dies. */
function keepKeyFreshReceiving<T>(core: DeviceCore<T>, peer: WgPeer<T>, now: number): void {
  const kp = peer.current;
  if (peer.timers.sentLastMinuteHandshake || !kp || !kp.isInitiator) return;
  if (now - kp.createdAt >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
    peer.timers.sentLastMinuteHandshake = true;
    sendHandshakeInitiation(core, peer, now, false);
  }
}
