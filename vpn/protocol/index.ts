// Public surface of the WireGuard protocol core (sans-IO).
export * from './constants';
export { blake2s, Blake2s } from './blake2s';
export { PrivateKey, PublicKey, hash, hmac, mac, kdf1, kdf2, kdf3 } from './crypto';
export type { Endpoint } from './endpoint';
export { endpointEquals, endpointText } from './endpoint';
export { WgDevice } from './device';
export type { DeviceEvent, DeviceOptions, DeviceSink } from './device';
export { WgPeer } from './peer';
export type { PeerConfig } from './peer';
export { tai64n } from './noise';
