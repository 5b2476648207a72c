// `npm run bench`: every benchmark of the project, printed as tables with
// ratios against anchors measured in the same run on the same machine.
// `npm run bench -- NAME...` runs only the named groups.
import { benchWireguard } from './wireguard';
import { benchMint } from './mint';
import { benchHttpLog } from '../../mitm/http_log/bench';
import { benchRouted, benchTunnel } from './tunnel';
import { benchInspect } from './inspect';
import { benchUdpIo } from './udp_io';
import { benchTun } from './tun';
import { benchPolicy } from './policy';
import { benchReassembly } from './reassembly';
import { benchControl } from './control';
import { printTable, type BenchRow } from './table';

const groups: Record<string, { title: string; run: () => Promise<BenchRow[]> }> = {
  wireguard: { title: 'WireGuard protocol (one process, two devices)', run: benchWireguard },
  mint: { title: 'TLS inspection: leaf certificate minting', run: benchMint },
  http_log: { title: 'TLS inspection: HTTP log parsing', run: benchHttpLog },
  tunnel: { title: 'Tunnel: bulk TCP and memory, Sightline vs wireguard-go + kernel forwarding (namespaces, needs root)', run: benchTunnel },
  routed: { title: 'Pass-through TCP (iperf3) through the tunnel: Sightline routed vs socket egress vs wireguard-go + kernel forwarding (namespaces, needs root)', run: benchRouted },
  inspect: { title: 'Inspected HTTPS through the tunnel: Sightline vs Squid ssl-bump and mitmproxy behind wireguard-go (namespaces, needs root)', run: benchInspect },
  tcp_reassembly: { title: 'TCP receive path with out-of-order data (one flow, no I/O)', run: benchReassembly },
  control: { title: 'Control plane: memory per peer (in the concentrator, after GC), per-user log writes, SIGKILL loss, sightline logs over 1 GiB', run: benchControl },
  udp_io: { title: 'UDP I/O on loopback: node:dgram vs batched addon (sendmmsg/recvmmsg, GSO/GRO)', run: benchUdpIo },
  tun: { title: 'TUN device I/O in a namespace: one packet per call vs batches (netstack/tun, needs root)', run: benchTun },
  policy: { title: 'Policy: decision per flow, 10,000 rules and 100,000 category domains; compile time; memory', run: benchPolicy },
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
