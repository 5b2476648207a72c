// `npm run bench`: every benchmark of the project, printed as tables with
// ratios against anchors measured in the same run on the same machine.
// `npm run bench -- NAME...` runs only the named groups.
import { benchWireguard } from './wireguard';
import { benchMint } from './mint';
import { benchHttpLog } from '../../mitm/http_log/bench';
import { benchTunnel } from './tunnel';
import { benchInspect } from './inspect';
import { benchUdpIo } from './udp_io';
import { benchControl } from './control';
import { printTable, type BenchRow } from './table';

const groups: Record<string, { title: string; run: () => Promise<BenchRow[]> }> = {
  wireguard: { title: 'WireGuard protocol (one process, two devices)', run: benchWireguard },
  mint: { title: 'TLS inspection: leaf certificate minting', run: benchMint },
  http_log: { title: 'TLS inspection: HTTP log parsing', run: benchHttpLog },
  tunnel: { title: 'Tunnel: bulk TCP and memory, Sightline vs wireguard-go + kernel forwarding (namespaces, needs root)', run: benchTunnel },
  inspect: { title: 'Inspected HTTPS through the tunnel: Sightline vs Squid ssl-bump and mitmproxy behind wireguard-go (namespaces, needs root)', run: benchInspect },
  control: { title: 'Control plane: memory per peer (in the concentrator, after GC), per-user log writes, SIGKILL loss, sightline logs over 1 GiB', run: benchControl },
  udp_io: { title: 'UDP I/O on loopback: node:dgram vs batched addon (sendmmsg/recvmmsg, GSO/GRO)', run: benchUdpIo },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const name of wanted) if (!(name in groups)) throw new Error(`unknown benchmark "${name}"; choose from: ${Object.keys(groups).join(', ')}`);
  process.stdout.write(`node ${process.version}, ${new Date().toISOString()}\n`);
  for (const [name, g] of Object.entries(groups)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    printTable(g.title, await g.run());
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
