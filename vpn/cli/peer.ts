// `sightline peer ...`: the interface from before users had several devices,
// kept as aliases. A peer is a user's device named "default" (peer NAME);
// other devices appear as USER/DEVICE.
import { Command } from 'commander';
import { DEFAULT_DEVICE, deviceState, findDevice, listDevices, peerLabel, removeDevice, validateName } from '../control';
import { withDeployment } from './common';
import { addDeviceAction, withAddOptions, type AddOptions } from './device';

export function peerCommand(): Command {
  const peer = new Command('peer').description('alias of "device" for one device per user: peer NAME is device "default" of user NAME');

  withAddOptions(peer
    .command('add <name>')
    .description('same as: device add NAME --name default, with the same options (prints a wg-quick client config on stdout)'))
    .action(async (name: string, opts: Omit<AddOptions, 'name'>, cmd: Command) => {
      validateName('peer', name);
      withDeployment(cmd, (d) => {
        if (findDevice(d.store, name, DEFAULT_DEVICE)) throw new Error(`a peer named "${name}" already exists`);
      });
      await addDeviceAction(cmd, name, { ...opts, name: DEFAULT_DEVICE }, name);
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
