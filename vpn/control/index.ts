// The control plane: the state store, tunnel address pools, provisioning of
// peers and client configs, and the registry that mirrors the store into the
// running WireGuard device.
export { Store } from './store';
export type { PeerRecord } from './store';
export { layoutPools, randomUlaPrefix } from './leases';
export type { PoolLayout, Pools } from './leases';
export { addPeer, renderClientConfig, validatePeerName } from './provisioning';
export type { AddedPeer, AddPeerOptions } from './provisioning';
export { PeerRegistry } from './peers';
export type { PeerTag } from './peers';
