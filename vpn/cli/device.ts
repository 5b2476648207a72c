// `sightline device ...`: an employee's devices, each with its own key pair
// and tunnel addresses. `device add` prints the wg-quick config, or a QR code
// for the phone apps.
import { Command } from 'commander';
import { writeFileSync, renameSync } from 'node:fs';
import {
  deviceState, EXPIRY_HELP, listDevices, parseExpiry, provisionDevice, qrPng, qrTerminal, removeDevice, renewDevice,
  requireUser, validateName, type DeviceRecord,
} from '../control';
import type { Deployment } from '../control';
import type { PeerStatus } from '../process';
import { table, withDeployment, withDeploymentAsync } from './common';
import { livePeers } from './live_status';

export interface AddOptions {
  name?: string;
  publicKey?: string;
  expires?: string;
  endpoint?: string;
  qr?: boolean;
  qrPng?: string;
  psk: boolean;
}

export function deviceCommand(): Command {
  const device = new Command('device').description("manage an employee's devices (one WireGuard key pair and tunnel address pair each)");

  withAddOptions(device
    .command('add <user>')
    .description('add a device (and the user if new): key pair, tunnel addresses, and a wg-quick client config on stdout')
    .option('--name <device>', 'device name (default: "default" for the first device, then device2, device3, ...)'))
    .action((user: string, opts: AddOptions, cmd: Command) => addDeviceAction(cmd, user, opts));

  device
    .command('list [user]')
    .description('devices with addresses, public key, state, expiry, and (from a running concentrator) last handshake, endpoint and bytes')
    .option('--json', 'JSON output')
    .action((user: string | undefined, opts: { json?: boolean }, cmd: Command) =>
      withDeployment(cmd, (d) => {
        if (user !== undefined) requireUser(d.store, user);
        const rows = deviceList(d, user);
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write(`no devices yet: sightline device add ${user ?? 'USER'}\n`);
          return;
        }
        const now = Date.now();
        process.stdout.write(table(
          ['USER', 'DEVICE', 'IPV4', 'IPV6', 'PUBLIC KEY', 'STATE', 'LAST HANDSHAKE', 'ENDPOINT', 'RX', 'TX', 'EXPIRES'],
          rows.map((r) => [
            r.user, r.device, r.ipv4, r.ipv6, r.publicKey, r.state,
            r.lastHandshake === null ? 'never' : `${Math.max(0, Math.round((now - Date.parse(r.lastHandshake)) / 1000))}s ago`,
            r.endpoint ?? '-', r.rxBytes === null ? '-' : String(r.rxBytes), r.txBytes === null ? '-' : String(r.txBytes),
            r.expiresAt ?? 'never',
          ]),
        ));
      }),
    );

  device
    .command('remove <user> <device>')
    .description('remove a device and free its tunnel addresses; a running concentrator ends its tunnel within a second')
    .action((user: string, name: string, _opts: unknown, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const r = removeDevice(d.store, user, name);
        process.stderr.write(`device "${name}" of user "${user}" removed; ${r.ipv4} and ${r.ipv6} are free again\n`);
      }),
    );

  device
    .command('renew <user> <device>')
    .description('set a new expiry; an expired device is accepted again (unless its user is disabled)')
    .requiredOption('--expires <when>', `${EXPIRY_HELP}, or "never"`)
    .action((user: string, name: string, opts: { expires: string }, cmd: Command) => {
      const now = Date.now();
      const expiresAt = opts.expires === 'never' ? null : parseExpiry(opts.expires, now);
      withDeployment(cmd, (d) => {
        const r = renewDevice(d.store, user, name, expiresAt);
        const what = `device "${name}" of user "${user}"`;
        if (expiresAt === null) process.stderr.write(`${what} never expires\n`);
        else if (expiresAt <= now) process.stderr.write(`${what} expired at ${new Date(expiresAt).toISOString()}: it is refused from now on\n`);
        else process.stderr.write(`${what} expires at ${new Date(expiresAt).toISOString()}\n`);
        if (r.userDisabled) process.stderr.write(`note: user "${user}" is disabled; the device stays refused until: sightline user enable ${user}\n`);
      });
    });

  return device;
}

/** The options of `device add` besides --name; `peer add` takes the same, being `device add NAME --name default`. */
export function withAddOptions(cmd: Command): Command {
  return cmd
    .option('--public-key <key>', 'the public key of a key pair the device generated itself; the config then has no PrivateKey')
    .option('--expires <when>', `refuse the device after this: ${EXPIRY_HELP}`)
    .option('--endpoint <host:port>', 'address clients connect to (default: config "endpoint")')
    .option('--qr', 'print the config as a QR code in the terminal instead (WireGuard app: scan from QR code)')
    .option('--qr-png <file>', 'write the config as a QR code PNG (mode 0600) instead of printing it')
    .option('--no-psk', 'do not add a preshared key');
}

/** `peerName`: called as `peer add NAME`, whose messages name the peer. */
export async function addDeviceAction(cmd: Command, user: string, opts: AddOptions, peerName?: string): Promise<void> {
  validateName('user', user);
  if (opts.name !== undefined) validateName('device', opts.name);
  const now = Date.now();
  const expiresAt = opts.expires === undefined ? null : parseExpiry(opts.expires, now);
  if (expiresAt !== null && expiresAt <= now) throw new Error(`--expires ${opts.expires} is in the past: the device would be refused at once`);
  await withDeploymentAsync(cmd, async (d) => {
    const added = provisionDevice(d, { user, device: opts.name, publicKey: opts.publicKey, expiresAt, endpoint: opts.endpoint, presharedKey: opts.psk });
    if (added.endpointWarning) process.stderr.write(`warning: ${added.endpointWarning}\n`);
    if (opts.qrPng !== undefined) writePrivateFile(opts.qrPng, await qrPng(added.clientConfig));
    if (opts.qr) process.stdout.write(await qrTerminal(added.clientConfig));
    else if (opts.qrPng === undefined) process.stdout.write(added.clientConfig);
    const { device: r } = added;
    const notes = [
      peerName !== undefined ? `peer "${peerName}" added: ${r.ipv4}, ${r.ipv6}` : `device "${r.name}" of user "${r.user}"${added.userCreated ? ' (new user)' : ''} added: ${r.ipv4}, ${r.ipv6}`,
      r.expiresAt === null ? '' : `, expires ${new Date(r.expiresAt).toISOString()}`,
      opts.qrPng === undefined ? '' : `; QR code written to ${opts.qrPng}`,
      '. ',
      opts.publicKey === undefined
        ? "The config holds the client's private key; it is not stored on the server."
        : 'The config has no private key: the device keeps its own.',
    ];
    process.stderr.write(notes.join('') + '\n');
    if (r.userDisabled) process.stderr.write(`note: user "${r.user}" is disabled; the device is refused until: sightline user enable ${r.user}\n`);
  });
}

/** The QR code holds the private key: never readable by others, never half-written. */
function writePrivateFile(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, file);
}

export interface DeviceListRow {
  user: string;
  device: string;
  ipv4: string;
  ipv6: string;
  publicKey: string;
  state: string;
  createdAt: string;
  expiresAt: string | null;
  /** Live fields: null when the concentrator is not running (or has not loaded the device yet). */
  lastHandshake: string | null;
  endpoint: string | null;
  rxBytes: number | null;
  txBytes: number | null;
  session: boolean;
}

function deviceList(d: Deployment, user: string | undefined): DeviceListRow[] {
  const live = livePeers(d.dataDir);
  const now = Date.now();
  return listDevices(d.store, user).map((r: DeviceRecord) => {
    const p: PeerStatus | undefined = live?.get(r.publicKey);
    return {
      user: r.user,
      device: r.name,
      ipv4: r.ipv4,
      ipv6: r.ipv6,
      publicKey: r.publicKey,
      state: deviceState(r, now),
      createdAt: new Date(r.createdAt).toISOString(),
      expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString(),
      lastHandshake: p?.lastHandshakeAt ?? null,
      endpoint: p?.endpoint ?? null,
      rxBytes: p?.rxBytes ?? null,
      txBytes: p?.txBytes ?? null,
      session: p?.session ?? false,
    };
  });
}
