import { MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT } from '../../../../vpn/protocol/constants';
import { PrivateKey, PublicKey } from '../../../../vpn/protocol/crypto';
import { FakeNet, ipv4 } from './fake_net';

function pair(opts: { psk?: Buffer; serverPsk?: Buffer } = {}) {
  const net = new FakeNet();
  const client = net.node('client');
  const server = net.node('server');
  net.link(client, server, opts);
  return { net, client, server };
}

describe('handshake and data (whitepaper §5.4)', () => {
  test('send() with no session stages the packet, handshakes, then delivers it', () => {
    const { net, client, server } = pair();
    client.send(server, 'first');
    expect(net.inFlight.map((d) => d.data[0])).toEqual([MESSAGE_INITIATION]);
    net.flush();
    expect(server.texts()).toEqual(['first']);
    expect(client.peerOf(server).hasSession(net.now)).toBe(true);
    expect(client.eventTypes()).toContain('handshake_complete');
    expect(server.eventTypes()).toContain('handshake_complete');
    expect(client.device.counters.no_session).toBe(1);
  });

  test('lastHandshakeAt and byte counters are kept per peer (as `wg show` reports them)', () => {
    const { net, client, server } = pair();
    expect(client.peerOf(server).lastHandshakeAt).toBeUndefined();
    client.send(server, 'count me');
    net.flush();
    const cp = client.peerOf(server);
    const sp = server.peerOf(client);
    expect(cp.lastHandshakeAt).toBe(net.now);
    expect(sp.lastHandshakeAt).toBe(net.now);
    // initiation 148 + data (16-byte header + 28-byte packet padded to 32 + 16-byte tag) sent; response 92 received.
    expect(cp.txBytes).toBe(148 + 64);
    expect(cp.rxBytes).toBe(92);
    expect(sp.rxBytes).toBe(148 + 64);
    expect(sp.txBytes).toBe(92);
  });

  test('data flows both ways after the handshake', () => {
    const { net, client, server } = pair();
    client.send(server, 'ping');
    net.flush();
    server.send(client, 'pong');
    net.flush();
    expect(server.texts()).toEqual(['ping']);
    expect(client.texts()).toEqual(['pong']);
    expect(server.delivered[0].peer).toBe(server.peerOf(client));
  });

  test('the responder can also become initiator: handshake in the other direction', () => {
    const { net, client, server } = pair();
    client.send(server, 'hello'); // teaches the server the client endpoint
    net.flush();
    net.advance(6000, 1000);
    server.device.initiateHandshake(server.peerOf(client), net.now);
    expect(net.queuedOfType(MESSAGE_INITIATION)).toHaveLength(1);
    net.flush();
    server.send(client, 'from-server');
    net.flush();
    expect(client.texts()).toEqual(['from-server']);
    expect(server.peerOf(client).current?.isInitiator).toBe(true);
  });

  test('the responder only sends on its new keypair after the initiator used it (§6.2 "next")', () => {
    const { net, client, server } = pair();
    client.device.initiateHandshake(client.peerOf(server), net.now);
    net.flush(1); // initiation consumed, response queued
    const sp = server.peerOf(client);
    expect(sp.next).not.toBeNull();
    expect(sp.current).toBeNull();
    server.send(client, 'early');
    expect(net.queuedOfType(MESSAGE_TRANSPORT)).toHaveLength(0);
    net.flush(); // response → client keepalive → promotion → staged 'early' sent
    expect(sp.current).not.toBeNull();
    expect(sp.next).toBeNull();
    expect(client.texts()).toEqual(['early']);
  });

  test('staged packets keep their order and all arrive after the handshake', () => {
    const { net, client, server } = pair();
    for (let i = 0; i < 5; i++) client.send(server, `p${i}`);
    net.flush();
    expect(server.texts()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  test('staging is bounded: the oldest packets are dropped beyond the queue size', () => {
    const { net, client, server } = pair();
    net.filter = () => false; // no handshake completes
    for (let i = 0; i < 200; i++) client.send(server, `p${i}`);
    expect(client.peerOf(server).staged.length).toBe(128);
    expect(client.device.counters.staged_overflow).toBe(72);
  });

  test('handshake with matching PSK succeeds', () => {
    const psk = Buffer.alloc(32, 0x33);
    const { net, client, server } = pair({ psk });
    client.send(server, 'with-psk');
    net.flush();
    expect(server.texts()).toEqual(['with-psk']);
  });

  test('PSK mismatch: the initiator cannot decrypt the response and no data is delivered', () => {
    const { net, client, server } = pair({ psk: Buffer.alloc(32, 1), serverPsk: Buffer.alloc(32, 2) });
    client.send(server, 'secret');
    net.flush();
    expect(server.texts()).toEqual([]);
    expect(client.device.counters.decrypt_failed).toBe(1);
    expect(client.peerOf(server).hasSession(net.now)).toBe(false);
  });

  test('PSK on one side only also fails (a missing PSK is the all-zero key)', () => {
    const { net, client, server } = pair({ psk: Buffer.alloc(32, 1), serverPsk: Buffer.alloc(32, 0) });
    client.send(server, 'x');
    net.flush();
    expect(server.texts()).toEqual([]);
    expect(client.device.counters.decrypt_failed).toBe(1);
  });

  test('an initiation from an unknown static key is ignored without reply', () => {
    const { net, server } = pair();
    const stranger = net.node('stranger');
    stranger.device.addPeer({ publicKey: server.publicKey, endpoint: { ...server.endpoint } });
    stranger.send(server, 'let me in');
    net.flush(1);
    expect(server.device.counters.unknown_peer).toBe(1);
    expect(net.inFlight).toHaveLength(0);
  });

  test('a wrong mac1 (sender does not know our public key) is dropped before any DH', () => {
    const { net, client, server } = pair();
    client.device.initiateHandshake(client.peerOf(server), net.now);
    net.inFlight[0].data[120] ^= 0xff; // inside mac1
    net.flush();
    expect(server.device.counters.bad_mac1).toBe(1);
    expect(server.peerOf(client).next).toBeNull();
  });

  test('a replayed initiation (same timestamp) is rejected and does not disturb the session', () => {
    const { net, client, server } = pair();
    client.send(server, 'a');
    net.flush();
    const init = net.log.find((d) => d.data[0] === MESSAGE_INITIATION);
    const sessionBefore = server.peerOf(client).current;
    net.advance(1000, 1000);
    server.device.receive(Buffer.from(init!.data), init!.from, net.now);
    expect(server.device.counters.stale_timestamp).toBe(1);
    expect(server.peerOf(client).current).toBe(sessionBefore);
    expect(net.queuedOfType(MESSAGE_RESPONSE)).toHaveLength(0);
  });

  test('three peers on one device each get their own session and packets', () => {
    const net = new FakeNet();
    const server = net.node('server');
    const clients = [net.node('c1'), net.node('c2'), net.node('c3')];
    for (const c of clients) net.link(c, server);
    clients.forEach((c, i) => c.send(server, `from-${i}`));
    net.flush();
    expect(server.delivered.map((d) => [d.peer.publicKey.toBase64(), d.packet.subarray(20).toString()])).toEqual(
      clients.map((c, i) => [c.publicKey.toBase64(), `from-${i}`]),
    );
    clients.forEach((c, i) => server.send(c, `to-${i}`));
    net.flush();
    clients.forEach((c, i) => expect(c.texts()).toEqual([`to-${i}`]));
    expect(server.device.counters.decrypt_failed ?? 0).toBe(0);
  });

  test('removePeer forgets sessions: later packets from that peer hit unknown indices', () => {
    const { net, client, server } = pair();
    client.send(server, 'a');
    net.flush();
    server.device.removePeer(client.publicKey);
    expect(server.device.peer(client.publicKey)).toBeUndefined();
    expect(server.device.indexCount).toBe(0);
    client.send(server, 'b');
    net.flush();
    expect(server.device.counters.unknown_receiver_index).toBe(1);
  });

  test('a peer whose key is a low-order point is refused at configuration time', () => {
    const net = new FakeNet();
    const n = net.node('n');
    expect(() => n.device.addPeer({ publicKey: PublicKey.fromBytes(Buffer.alloc(32)) })).toThrow(/low-order/);
    expect(() => n.device.addPeer({ publicKey: PrivateKey.generate().publicKey(), presharedKey: Buffer.alloc(5) })).toThrow(/preshared/);
  });

  test('padding is stripped: the delivered packet is exactly the IP packet sent', () => {
    const { net, client, server } = pair();
    const pkt = ipv4('odd-length-payload!');
    client.device.send(client.peerOf(server), pkt, net.now);
    net.flush();
    expect(server.delivered[0].packet.equals(pkt)).toBe(true);
    expect(net.log.filter((d) => d.data[0] === MESSAGE_TRANSPORT).every((d) => (d.data.length - 32) % 16 === 0)).toBe(true);
  });
});
