// Public surface of the WireGuard protocol core (sans-IO).
//
// Wiring: feed every UDP datagram to WgDevice.receive(data, from, now), every
// inner IP packet for a peer to WgDevice.send(peer, packet, now), and call
// WgDevice.tick(now) at WgDevice.nextTimerAt() (or on a coarse interval).
// `now` is a monotonic ms clock; each call returns its DeviceOutput.
export * from './constants';
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
