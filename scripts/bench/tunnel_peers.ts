// Adds many peers to a deployment in one process (the CLI's `peer add` starts
// a Node process per peer, about a second each), for the memory-per-idle-peer
// measurement. Same code path as the CLI: provisionDevice.
// Usage: node tunnel_peers.js DATA_DIR CONFIG COUNT ENDPOINT
import { openDeployment } from '../../vpn/control';
import { provisionDevice } from '../../vpn/control';

function main(): void {
  const [dataDir, config, countArg, endpoint] = process.argv.slice(2);
  if (endpoint === undefined) throw new Error('usage: tunnel_peers DATA_DIR CONFIG COUNT ENDPOINT');
  const started = Date.now();
  const d = openDeployment({ dataDir, config });
  try {
    const count = Number(countArg);
    for (let i = 0; i < count; i++) provisionDevice(d, { user: `idle-peer-${i}`, endpoint });
    process.stdout.write(JSON.stringify({ added: count, ms: Date.now() - started }) + '\n');
  } finally {
    d.store.close();
  }
}

main();
