// The control plane: a deployment (data directory, config, store, server
// key), the state store and its migrations, users, devices and their leases,
// provisioning of client configs (text and QR), and the registry that
// mirrors the store into the running WireGuard device.
export { checkPrivateMode, openDeployment, serverKeyPath, type Deployment, type GlobalOptions } from './deployment';
export { Store } from './store';
export { MIGRATIONS, type Migration } from './migrations';
export { addUser, findUser, listUsers, removeUser, requireUser, setUserDisabled, validateName, type UserRecord } from './users';
export {
  DEFAULT_DEVICE, deviceState, findDevice, listDevices, peerLabel, removeDevice, renewDevice, requireDevice,
  type DeviceRecord, type DeviceState,
} from './devices';
export { layoutPools, pickAddresses, randomUlaPrefix, type Lease, type PoolLayout, type Pools } from './leases';
export { EXPIRY_HELP, ExpiryError, parseExpiry } from './expiry';
export { provisionDevice, renderClientConfig, type ProvisionedDevice, type ProvisionOptions } from './provisioning';
export { qrPng, qrTerminal } from './qr';
export { PeerRegistry, storeSource, type CutReason, type DeviceSource, type PeerOwner, type PeerTag, type SyncResult, type TunnelDevice, type TunnelPeer } from './peers';
