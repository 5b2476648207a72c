// `sightline peer ...`: the interface from before users had several devices,
// kept as aliases. A peer is a user's device named "default" (peer NAME);
// other devices appear as USER/DEVICE.
import { Command } from 'commander';
import { DEFAULT_DEVICE, deviceState, findDevice, listDevices, peerLabel, provisionDevice, removeDevice, validateName } from '../control';
import { withDeployment } from './common';

export function peerCommand(): Command {
  const peer = new Command('peer').description('alias of "device" for one device per user: peer NAME is device "default" of user NAME');

  peer
    .command('add <name>')
    .description('same as: device add NAME --name default (prints a wg-quick client config on stdout)')
    .option('--endpoint <host:port>', 'address clients connect to (default: config "endpoint")')
    .option('--no-psk', 'do not add a preshared key')
    .action((name: string, opts: { endpoint?: string; psk: boolean }, cmd: Command) => {
      validateName('peer', name);
      withDeployment(cmd, (d) => {
        if (findDevice(d.store, name, DEFAULT_DEVICE)) throw new Error(`a peer named "${name}" already exists`);
        const added = provisionDevice(d, { user: name, device: DEFAULT_DEVICE, endpoint: opts.endpoint, presharedKey: opts.psk });
        if (added.endpointWarning) process.stderr.write(`warning: ${added.endpointWarning}\n`);
        process.stdout.write(added.clientConfig);
        process.stderr.write(`peer "${name}" added: ${added.device.ipv4}, ${added.device.ipv6}. The config above holds the client's private key; it is not stored on the server.\n`);
      });
    });

  peer
    .command('list')
    .description('list every device as a peer (same as device list, in the older format)')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const now = Date.now();
        const peers = listDevices(d.store).map((r) => ({
          name: peerLabel(r.user, r.name), user: r.user, device: r.name, publicKey: r.publicKey, ipv4: r.ipv4, ipv6: r.ipv6,
          createdAt: new Date(r.createdAt).toISOString(), disabled: deviceState(r, now) !== 'active',
        }));
        if (opts.json) {
          process.stdout.write(JSON.stringify(peers, null, 2) + '\n');
          return;
        }
        if (peers.length === 0) process.stdout.write('no peers yet: sightline peer add NAME\n');
        for (const p of peers) process.stdout.write(`${p.name}\t${p.ipv4}\t${p.ipv6}\t${p.publicKey}${p.disabled ? '\tdisabled' : ''}\n`);
      }),
    );

  peer
    .command('remove <name>')
    .description('same as: device remove USER DEVICE, for NAME (device "default") or USER/DEVICE')
    .action((name: string, _opts: unknown, cmd: Command) =>
      withDeployment(cmd, (d) => {
        const slash = name.indexOf('/');
        const [user, device] = slash < 0 ? [name, DEFAULT_DEVICE] : [name.slice(0, slash), name.slice(slash + 1)];
        if (!findDevice(d.store, user, device)) throw new Error(`no peer named ${JSON.stringify(name)} (see: sightline peer list)`);
        removeDevice(d.store, user, device);
        process.stderr.write(`peer "${name}" removed\n`);
      }),
    );

  return peer;
}
