// N WireGuard clients in one process (one key pair, one UDP socket and one
// WgDevice each), for the memory-per-connected-peer measurement: each pings
// the concentrator's tunnel address once, so its session is up, then stays
// idle. Handshakes are paced so the concentrator is not put under load.
// Input (stdin, one JSON line): { server: PUBLIC_KEY, endpoint: "HOST:PORT", serverIp, clients: [{ key, ip }] }
// Binds every client's socket and prints {"ports": [...]} (in the order of
// `clients`), then waits for a line "go" on stdin: the concentrator refuses
// to roam a peer to a loopback source (a packet loop), so the measurement
// sets each peer's endpoint to its client's port before the handshakes.
// Prints {"connected": N} once every client got its echo reply (or the deadline passed).
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { buildIcmpEcho, IpAddress } from '../../netstack/wire';
import { PrivateKey, PublicKey, WgDevice, type DeviceOutput } from '../../vpn/protocol';

interface Input {
  server: string;
  endpoint: string;
  serverIp: string;
  clients: Array<{ key: string; ip: string }>;
}

const PER_SECOND = 200;
const DEADLINE_MS = 60_000;

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const input = JSON.parse(String((await lines.next()).value)) as Input;
  const colon = input.endpoint.lastIndexOf(':');
  const endpoint = { address: input.endpoint.slice(0, colon), port: Number(input.endpoint.slice(colon + 1)) };
  let connected = 0;
  const devices: WgDevice[] = [];
  const routes = new Map<WgDevice, (out: DeviceOutput) => void>();
  const sockets: Socket[] = [];
  for (let i = 0; i < input.clients.length; i++) {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    sockets.push(sock);
  }
  process.stdout.write(`${JSON.stringify({ ports: sockets.map((s) => s.address().port) })}\n`);
  if ((await lines.next()).value !== 'go') throw new Error('expected "go" on stdin');
  const started = Date.now();
  for (const [i, c] of input.clients.entries()) {
    const sock = sockets[i];
    let got = false;
    const device = new WgDevice({ privateKey: PrivateKey.fromBase64(c.key), wallClock: Date.now });
    const route = (out: DeviceOutput): void => {
      for (let d = 0; d < out.datagrams.length; d++) sock.send(out.bytes(d), out.endpoints[d].port, out.endpoints[d].address);
      if (out.packet === null || got) return;
      got = true;
      if (++connected === input.clients.length) process.stdout.write(`${JSON.stringify({ connected, ms: Date.now() - started })}\n`);
    };
    routes.set(device, route);
    sock.on('message', (m, r) => route(device.receive(m, { address: r.address, port: r.port }, performance.now())));
    const peer = device.addPeer({ publicKey: PublicKey.fromBase64(input.server), endpoint });
    route(device.send(peer, buildIcmpEcho(IpAddress.parse(c.ip), IpAddress.parse(input.serverIp), 'echo_request', 1, 1, Buffer.from('idle')), performance.now()));
    devices.push(device);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, (10 * 1000) / PER_SECOND));
  }
  setInterval(() => {
    for (const d of devices) routes.get(d)?.(d.tick(performance.now()));
  }, 200);
  setTimeout(() => {
    if (connected < input.clients.length) process.stdout.write(`${JSON.stringify({ connected, ms: Date.now() - started })}\n`);
  }, DEADLINE_MS);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
