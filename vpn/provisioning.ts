// Adding peers: a server-generated key pair, leased tunnel addresses, and a
// wg-quick client config. Only the public key (and the optional preshared
// key, which the server needs) is stored; the client's private key exists
// only in the config handed to the employee.
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { parseHostPort } from './config';
import type { Deployment } from './deployment';
import type { PeerRecord } from './store';
import { PrivateKey } from './protocol';
import { allowedIpsFor } from '../policy';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
const PERSISTENT_KEEPALIVE = 25;

export interface AddPeerOptions {
  endpoint?: string;
  presharedKey?: boolean;
}

export interface AddedPeer {
  peer: PeerRecord;
  clientConfig: string;
  /** Set when the endpoint had to be guessed: say so to the admin. */
  endpointWarning: string | null;
}

export function validatePeerName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new Error(`invalid peer name ${JSON.stringify(name)}: use 1-64 letters, digits, and . _ @ + - (starting with a letter or digit)`);
  }
}

export function addPeer(d: Deployment, name: string, opts: AddPeerOptions = {}): AddedPeer {
  validatePeerName(name);
  const { endpoint, warning } = clientEndpoint(d, opts.endpoint);
  const key = PrivateKey.generate();
  const psk = opts.presharedKey === false ? null : randomBytes(32).toString('base64');
  const peer = d.store.addPeer(
    { name, user: name, publicKey: key.publicKey().toBase64(), presharedKey: psk },
    (used) => pickAddresses(d, used),
  );
  return { peer, clientConfig: renderClientConfig(d, peer, key, endpoint), endpointWarning: warning };
}

function pickAddresses(d: Deployment, used: { ipv4: Set<string>; ipv6: Set<string> }): { ipv4: string; ipv6: string } {
  const { layout } = d;
  // Index 1 is the concentrator; peers start at 2. Same index in both pools
  // when free, which keeps a user's two addresses easy to correlate in logs.
  for (let i = 2n; i <= layout.capacity + 1n; i++) {
    const v4 = layout.v4At(i);
    const v6 = layout.v6At(i);
    if (v4 === null || v6 === null) break;
    if (!used.ipv4.has(v4) && !used.ipv6.has(v6)) return { ipv4: v4, ipv6: v6 };
  }
  throw new Error(`the tunnel address pools are full (${d.ipv4Pool}, ${d.ipv6Pool}): widen tunnel.ipv4Pool or remove unused peers`);
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

export function renderClientConfig(d: Deployment, peer: PeerRecord, key: PrivateKey, endpoint: string): string {
  const lines = [
    '[Interface]',
    `# Sightline peer "${peer.name}"`,
    `PrivateKey = ${key.toBase64()}`,
    `Address = ${peer.ipv4}/32, ${peer.ipv6}/128`,
    `DNS = ${d.layout.serverV4}, ${d.layout.serverV6}`,
    `MTU = ${d.config.mtu}`,
    '',
    '[Peer]',
    `PublicKey = ${d.serverKey.publicKey().toBase64()}`,
  ];
  if (peer.presharedKey) lines.push(`PresharedKey = ${peer.presharedKey}`);
  // routing.exclude stays out of the tunnel; the tunnel pools (DNS, the concentrator) always stay in.
  lines.push(`AllowedIPs = ${allowedIpsFor(d.config.routing.exclude, [d.ipv4Pool, d.ipv6Pool]).join(', ')}`, `Endpoint = ${endpoint}`, `PersistentKeepalive = ${PERSISTENT_KEEPALIVE}`, '');
  return lines.join('\n');
}
