import { Command } from 'commander';
import { openDeployment, type GlobalOptions } from '../deployment';
import { addPeer, validatePeerName } from '../control';

export function peerCommand(): Command {
  const peer = new Command('peer').description('manage WireGuard peers (one per employee device)');

  peer
    .command('add <name>')
    .description('create a peer: key pair, tunnel addresses, and a wg-quick client config on stdout')
    .option('--endpoint <host:port>', 'address clients connect to (default: config "endpoint")')
    .option('--no-psk', 'do not add a preshared key')
    .action((name: string, opts: { endpoint?: string; psk: boolean }, cmd: Command) => {
      validatePeerName(name);
      const d = openDeployment(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const added = addPeer(d, name, { endpoint: opts.endpoint, presharedKey: opts.psk });
        if (added.endpointWarning) process.stderr.write(`warning: ${added.endpointWarning}\n`);
        process.stdout.write(added.clientConfig);
        process.stderr.write(`peer "${name}" added: ${added.peer.ipv4}, ${added.peer.ipv6}. The config above holds the client's private key; it is not stored on the server.\n`);
      } finally {
        d.store.close();
      }
    });

  peer
    .command('list')
    .description('list peers')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const d = openDeployment(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const peers = d.store.listPeers().map((p) => ({ name: p.name, user: p.user, publicKey: p.publicKey, ipv4: p.ipv4, ipv6: p.ipv6, createdAt: new Date(p.createdAt).toISOString(), disabled: p.disabled }));
        if (opts.json) {
          process.stdout.write(JSON.stringify(peers, null, 2) + '\n');
          return;
        }
        if (peers.length === 0) process.stdout.write('no peers yet: sightline peer add NAME\n');
        for (const p of peers) process.stdout.write(`${p.name}\t${p.ipv4}\t${p.ipv6}\t${p.publicKey}${p.disabled ? '\tdisabled' : ''}\n`);
      } finally {
        d.store.close();
      }
    });

  peer
    .command('remove <name>')
    .description('remove a peer; a running concentrator drops it within a second')
    .action((name: string, _opts: unknown, cmd: Command) => {
      const d = openDeployment(cmd.optsWithGlobals<GlobalOptions>());
      try {
        if (!d.store.removePeer(name)) throw new Error(`no peer named ${JSON.stringify(name)} (see: sightline peer list)`);
        process.stderr.write(`peer "${name}" removed\n`);
      } finally {
        d.store.close();
      }
    });

  return peer;
}
