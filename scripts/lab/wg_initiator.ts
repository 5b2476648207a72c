// The concentrator's WireGuard stack as the *initiator*: it has a packet for
// a peer with no session, so it stages the packet, initiates the handshake to
// the peer's known endpoint, and delivers it once the session is up. Used by
// the e2e test against wireguard-go as the responder.
// Run: node dist/scripts/lab/wg_initiator.js PEER_PUBLIC_KEY PEER_HOST:PORT OUR_TUNNEL_IP PEER_TUNNEL_IP
// Prints our public key on the first line, then "reply" when the peer's echo reply arrives.
import { performance } from 'node:perf_hooks';
import { buildIcmpEcho, IpAddress, isWireError, parseIpPacket } from '../../netstack/wire';
import { PrivateKey, PublicKey, WgDevice, type DeviceOutput, type WgPeer } from '../../vpn/protocol';
import { UdpEdge } from '../../vpn/edge';

async function main(): Promise<void> {
  const [peerKey, peerEndpoint, ourIp, peerIp] = process.argv.slice(2);
  const colon = peerEndpoint.lastIndexOf(':');
  const endpoint = { address: peerEndpoint.slice(0, colon), port: Number(peerEndpoint.slice(colon + 1)) };
  const key = PrivateKey.generate();
  process.stdout.write(`${key.publicKey().toBase64()}\n`);
  const device = new WgDevice({ privateKey: key, wallClock: Date.now });
  const edge: UdpEdge = await UdpEdge.listen({ port: 0, onDatagram: (d, from) => route(device.receive(d, from, performance.now())), onError: () => undefined });
  const route = (out: DeviceOutput): void => {
    for (let i = 0; i < out.datagrams.length; i++) edge.sendDatagram(out.datagrams[i], out.endpoints[i]);
    if (out.packet === null) return;
    const pkt = parseIpPacket(out.packet);
    if (!isWireError(pkt) && IpAddress.fromBytes(pkt.src).toString() === peerIp) {
      process.stdout.write('reply\n');
      process.exit(0);
    }
  };
  // Wait for the parent to configure the responder with our key (a line on stdin).
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const peer: WgPeer = device.addPeer({ publicKey: PublicKey.fromBase64(peerKey), endpoint });
  const ping = buildIcmpEcho(IpAddress.parse(ourIp), IpAddress.parse(peerIp), 'echo_request', 1, 1, Buffer.from('initiator'));
  route(device.send(peer, ping, performance.now()));
  setInterval(() => route(device.tick(performance.now())), 50);
  setTimeout(() => {
    process.stderr.write(`no reply; counters ${JSON.stringify(device.counters)}\n`);
    process.exit(1);
  }, 10_000);
}

main().catch((err: unknown) => {
  process.stderr.write(`wg_initiator failed: ${String(err)}\n`);
  process.exit(1);
});
