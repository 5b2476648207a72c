// Public surface of the WireGuard protocol core (sans-IO).
//
// Wiring: feed every UDP datagram to WgDevice.receive(data, from, now), every
// inner IP packet for a peer to WgDevice.send(peer, packet, now), and call
// WgDevice.tick(now) at WgDevice.nextTimerAt() (or on a coarse interval).
// `now` is a monotonic ms clock; each call returns its DeviceOutput.
export {
  CONSTRUCTION,
  IDENTIFIER,
  LABEL_MAC1,
  LABEL_COOKIE,
  REKEY_AFTER_MESSAGES,
  REJECT_AFTER_MESSAGES,
  REKEY_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  REKEY_AFTER_TIME,
  REJECT_AFTER_TIME,
  REKEY_ATTEMPT_TIME,
  REKEY_TIMEOUT,
  KEEPALIVE_TIMEOUT,
  COOKIE_REFRESH_TIME,
  HANDSHAKE_INITIATION_RATE,
  REKEY_TIMEOUT_JITTER_MAX,
  MAX_TIMER_HANDSHAKES,
  ZERO_KEY_MATERIAL_AFTER,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_TRANSPORT,
  KEY_LEN,
  HASH_LEN,
  MAC_LEN,
  AEAD_TAG_LEN,
  TIMESTAMP_LEN,
  COOKIE_LEN,
  COOKIE_NONCE_LEN,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  MESSAGE_TRANSPORT_MIN_SIZE,
  PADDING_MULTIPLE,
  MAX_STAGED_PACKETS,
  DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD,
  UNDER_LOAD_AFTER_TIME,
} from './constants';
export { blake2s, Blake2s } from './blake2s';
export { PrivateKey, PublicKey, hash, hmac, mac, kdf1, kdf2, kdf3, wipe } from './crypto';
export type { Endpoint } from './endpoint';
export { endpointEquals, endpointText } from './endpoint';
export { WgDevice, WireGuardCoreError } from './device';
export type { DeviceOptions } from './device';
export { DeviceOutput, type DeviceEvent } from './output';
export { WgPeer } from './peer';
export type { PeerSettings } from './peer';
export { tai64n } from './noise';
export { dh } from './crypto';
