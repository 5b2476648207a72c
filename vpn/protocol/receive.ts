// Inbound messages (wireguard-go receive.go): validate length and type, MACs
// and cookies for handshakes, then hand over to noise.ts / transport.ts.
// Every rejection is a counted reason; nothing here throws on bad input.
import {
  MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE, MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_MIN_SIZE, KEY_LEN,
} from './constants';
import { COOKIE_RECEIVER } from './cookie';
import type { WgDevice } from './device';
import { Endpoint } from './endpoint';
import { consumeInitiation, consumeResponse, createResponse, INIT_SENDER, RESP_RECEIVER, RESP_SENDER } from './noise';
import { counterExhausted } from './replay';
import { innerPacketLength, openTransport, TRANSPORT_COUNTER, TRANSPORT_RECEIVER } from './transport';

export function receiveDatagram<T>(dev: WgDevice<T>, msg: Buffer, from: Endpoint, now: number): void {
  if (msg.length < 4) return dev.drop('bad_length');
  // The first byte is the type and the next three are reserved zero bytes,
  // so reading a little-endian u32 checks both (as wireguard-go does).
  const type = msg.readUInt32LE(0);
  switch (type) {
    case MESSAGE_TRANSPORT:
      if (msg.length < MESSAGE_TRANSPORT_MIN_SIZE) return dev.drop('bad_length');
      return receiveTransport(dev, msg, from, now);
    case MESSAGE_INITIATION:
      if (msg.length !== MESSAGE_INITIATION_SIZE) return dev.drop('bad_length');
      if (!checkHandshakeMacs(dev, msg, INIT_SENDER, from, now)) return;
      return receiveInitiation(dev, msg, from, now);
    case MESSAGE_RESPONSE:
      if (msg.length !== MESSAGE_RESPONSE_SIZE) return dev.drop('bad_length');
      if (!checkHandshakeMacs(dev, msg, RESP_SENDER, from, now)) return;
      return receiveResponse(dev, msg, from, now);
    case MESSAGE_COOKIE_REPLY:
      if (msg.length !== MESSAGE_COOKIE_REPLY_SIZE) return dev.drop('bad_length');
      return receiveCookieReply(dev, msg, now);
    default:
      return dev.drop('unknown_message_type');
  }
}

/**
 * §5.3: mac1 is always required; under load, a handshake message without a
 * valid mac2 is answered with a cookie reply instead of being processed, so
 * a flood from spoofed addresses costs us no Diffie-Hellman.
 */
function checkHandshakeMacs<T>(dev: WgDevice<T>, msg: Buffer, senderOffset: number, from: Endpoint, now: number): boolean {
  if (!dev.cookieChecker.checkMac1(msg)) {
    dev.drop('bad_mac1');
    return false;
  }
  if (dev.noteHandshakeAndCheckLoad(now) && !dev.cookieChecker.checkMac2(msg, from, now)) {
    dev.out.sendDatagram(dev.cookieChecker.createReply(msg, senderOffset, from, now), from);
    dev.drop('bad_mac2_cookie_sent');
    return false;
  }
  return true;
}

function receiveInitiation<T>(dev: WgDevice<T>, msg: Buffer, from: Endpoint, now: number): void {
  const hs = consumeInitiation(dev.identity, msg, now, dev.lookupHandshake);
  if (typeof hs === 'string') return dev.drop(hs);
  const peer = dev.peerForHandshake(hs);
  if (!peer) return dev.drop('unknown_peer');
  if (peer.refused !== null) {
    // Authenticated and fresh (consumeInitiation checked the timestamp), so the count is the peer's own.
    peer.handshake.clear();
    return dev.drop(`handshake_refused_${peer.refused}`, peer);
  }
  peer.rxBytes += msg.length;
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  dev.updateEndpoint(peer, from);
  // A pending initiation of ours to this peer is superseded by theirs.
  dev.releaseHandshakeIndex(peer);
  const idx = dev.allocateIndex(peer, null);
  const response = createResponse(hs, idx, Buffer.from(dev.random(KEY_LEN)));
  if (typeof response === 'string') {
    dev.indexTable.delete(idx);
    return dev.drop(response, peer);
  }
  if (!dev.beginSession(peer, now)) return dev.drop('unexpected_response', peer);
  peer.cookies.addMacs(response, now);
  peer.lastSentHandshakeAt = now; // the response counts as our handshake attempt (no crossing initiation)
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketSent();
  peer.txBytes += response.length;
  dev.count('handshake_response_sent');
  dev.out.sendDatagram(response, from);
}

function receiveResponse<T>(dev: WgDevice<T>, msg: Buffer, from: Endpoint, now: number): void {
  const entry = dev.indexTable.get(msg.readUInt32LE(RESP_RECEIVER));
  if (!entry || entry.keypair !== null) return dev.drop('unknown_receiver_index');
  const peer = entry.peer;
  const hs = consumeResponse(dev.identity, peer.handshake, msg);
  if (typeof hs === 'string') return dev.drop(hs, peer);
  peer.rxBytes += msg.length;
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  dev.updateEndpoint(peer, from);
  if (!dev.beginSession(peer, now)) return dev.drop('unexpected_response', peer);
  dev.handshakeComplete(peer, now);
  // Confirms the session to the responder: staged data, or else a keepalive.
  dev.sendKeepalive(peer, now);
}

function receiveCookieReply<T>(dev: WgDevice<T>, msg: Buffer, now: number): void {
  const entry = dev.indexTable.get(msg.readUInt32LE(COOKIE_RECEIVER));
  if (!entry) return dev.drop('unknown_receiver_index');
  // The retransmission timer resends with mac2; nothing is sent from here (§5.4.7).
  if (!entry.peer.cookies.consumeReply(msg, now)) return dev.drop('bad_cookie_reply', entry.peer);
  dev.count('cookie_reply_received');
}

function receiveTransport<T>(dev: WgDevice<T>, msg: Buffer, from: Endpoint, now: number): void {
  const entry = dev.indexTable.get(msg.readUInt32LE(TRANSPORT_RECEIVER));
  const kp = entry?.keypair;
  if (!entry || !kp) return dev.drop('unknown_receiver_index');
  const peer = entry.peer;
  const lo = msg.readUInt32LE(TRANSPORT_COUNTER);
  const hi = msg.readUInt32LE(TRANSPORT_COUNTER + 4);
  if (kp.isExpired(now) || counterExhausted(hi, lo)) return dev.drop('expired_keypair', peer);
  const plain = openTransport(kp, msg);
  if (plain === null) return dev.drop('decrypt_failed', peer);
  // After authentication, or a forger could mark counters as used.
  if (!kp.replay.validate(hi, lo)) return dev.drop('replay', peer);
  if (peer.next === kp) {
    const dropped = peer.promoteNext();
    if (dropped) dev.deleteKeypair(dropped);
    dev.handshakeComplete(peer, now);
    dev.sendStagedPackets(peer, now);
  }
  dev.keepKeyFreshReceiving(peer, now);
  peer.timers.anyAuthenticatedPacketTraversal(now);
  peer.timers.anyAuthenticatedPacketReceived();
  dev.updateEndpoint(peer, from);
  peer.rxBytes += msg.length;
  if (plain.length === 0) {
    dev.count('keepalive_received');
    return;
  }
  peer.timers.dataReceived(now);
  const len = innerPacketLength(plain);
  if (len < 0) return dev.drop('bad_inner_packet', peer);
  dev.out.packet = len === plain.length ? plain : plain.subarray(0, len);
  dev.out.peer = peer;
}
