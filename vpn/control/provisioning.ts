// Adding devices: a server-generated key pair (or the device's own public
// key), leased tunnel addresses, and a wg-quick client config. Only the public
// key (and the optional preshared key, which the server needs) is stored; a
// generated private key exists only in the config handed to the employee.
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { parseHostPort } from '../config';
import type { Deployment } from './deployment';
import { dh, PrivateKey, PublicKey } from '../protocol';
import { addDevice, peerLabel, type DeviceRecord } from './devices';
import { allowedIpsFor } from '../../policy';

const PERSISTENT_KEEPALIVE = 25;

export interface ProvisionOptions {
  user: string;
  device?: string;
  email?: string;
  /** The device's own public key (it generated its key pair): the config then has no PrivateKey. */
  publicKey?: string;
  expiresAt?: number | null;
  endpoint?: string;
  presharedKey?: boolean;
}

export interface ProvisionedDevice {
  device: DeviceRecord;
  userCreated: boolean;
  clientConfig: string;
  /** Set when the endpoint had to be guessed: say so to the admin. */
  endpointWarning: string | null;
}

export function provisionDevice(d: Deployment, opts: ProvisionOptions): ProvisionedDevice {
  const { endpoint, warning } = clientEndpoint(d, opts.endpoint);
  const key = opts.publicKey === undefined ? PrivateKey.generate() : null;
  const publicKey = key ? key.publicKey().toBase64() : devicePublicKey(d, opts.publicKey as string);
  const psk = opts.presharedKey === false ? null : randomBytes(32).toString('base64');
  const { device, userCreated } = addDevice(d.store, d.layout, {
    user: opts.user, name: opts.device, email: opts.email, publicKey, presharedKey: psk, expiresAt: opts.expiresAt ?? null,
  });
  return { device, userCreated, clientConfig: renderClientConfig(d, device, key, endpoint), endpointWarning: warning };
}

/** A public key the employee sent: well-formed, not ours, and usable for a handshake at all. */
function devicePublicKey(d: Deployment, text: string): string {
  let key: PublicKey;
  try {
    key = PublicKey.fromBase64(text);
  } catch {
    throw new Error(`invalid --public-key ${JSON.stringify(text)}: expected the device's WireGuard public key, 44 characters of base64 (as printed by "wg pubkey" or the app)`);
  }
  if (key.equals(d.serverKey.publicKey())) throw new Error("--public-key is the concentrator's own public key: give the device's public key");
  if (dh(d.serverKey.bytes, key.bytes) === null) throw new Error('--public-key is a low-order point: no handshake with it can succeed; generate a new key pair on the device');
  return key.toBase64();
}

function clientEndpoint(d: Deployment, flag: string | undefined): { endpoint: string; warning: string | null } {
  const chosen = flag ?? d.config.endpoint;
  if (chosen !== undefined) {
    if (parseHostPort(chosen) === null) throw new Error(`invalid endpoint ${JSON.stringify(chosen)}: expected HOST:PORT ([IPv6]:PORT)`);
    return { endpoint: chosen, warning: null };
  }
  const guess = firstPublicAddress();
  const endpoint = `${guess.includes(':') ? `[${guess}]` : guess}:${d.config.listenPort}`;
  return {
    endpoint,
    warning: `no endpoint configured: the client config points at ${endpoint}, a guess from this host's interfaces. Set "endpoint" in sightline.yaml or pass --endpoint HOST:PORT.`,
  };
}

function firstPublicAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

/** `key` null: the device holds its own private key; the config says where it goes. */
export function renderClientConfig(d: Deployment, device: DeviceRecord, key: PrivateKey | null, endpoint: string): string {
  const lines = [
    '[Interface]',
    `# Sightline peer "${peerLabel(device.user, device.name)}"`,
    ...(key
      ? [`PrivateKey = ${key.toBase64()}`]
      : [
          `# No PrivateKey: this device generated its own key pair (public key ${device.publicKey}).`,
          '# Add "PrivateKey = <its private key>" here, or enter the settings below in the app that holds it.',
        ]),
    `Address = ${device.ipv4}/32, ${device.ipv6}/128`,
    `DNS = ${d.layout.serverV4}, ${d.layout.serverV6}`,
    `MTU = ${d.config.mtu}`,
    '',
    '[Peer]',
    `PublicKey = ${d.serverKey.publicKey().toBase64()}`,
  ];
  if (device.presharedKey) lines.push(`PresharedKey = ${device.presharedKey}`);
  // routing.exclude stays out of the tunnel; the tunnel pools (DNS, the concentrator) always stay in.
  lines.push(`AllowedIPs = ${allowedIpsFor(d.config.routing.exclude, [d.ipv4Pool, d.ipv6Pool]).join(', ')}`, `Endpoint = ${endpoint}`, `PersistentKeepalive = ${PERSISTENT_KEEPALIVE}`, '');
  return lines.join('\n');
}
