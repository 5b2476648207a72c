// A refused peer (its user disabled, its device expired) stays known to the
// device: its sessions end at once with their keys zeroed, and its
// handshakes are refused and counted, attributable to it, not "unknown_peer".
import { MESSAGE_INITIATION, MESSAGE_TRANSPORT } from '../../../../vpn/protocol/constants';
import { establishedPair } from './fake_net';

function connected() {
  const p = establishedPair();
  return { ...p, peer: p.server.peerOf(p.client) };
}

describe('refusing a peer', () => {
  test('ends its session at once: keys zeroed, receiver indexes freed, timers stopped', () => {
    const { net, server, peer } = connected();
    expect(peer.hasSession(net.now)).toBe(true);
    const indexes = server.device.indexCount;
    server.device.refusePeer(peer, 'disabled');
    expect(peer.hasSession(net.now)).toBe(false);
    expect([peer.current, peer.previous, peer.next]).toEqual([null, null, null]);
    expect(server.device.indexCount).toBeLessThan(indexes);
    expect(server.device.nextTimerAt()).toBe(Infinity);
  });

  test("the client's transport packets after the cut are dropped, not delivered", () => {
    const { net, client, server, peer } = connected();
    server.device.refusePeer(peer, 'disabled');
    client.send(server, 'after the cut');
    expect(net.queuedOfType(MESSAGE_TRANSPORT)).toHaveLength(1);
    net.flush();
    expect(server.texts()).toEqual(['hello']);
    expect(server.device.counters.unknown_receiver_index).toBe(1);
  });

  test('its handshake initiations are refused and counted by reason, with the peer in the event', () => {
    const { net, client, server, peer } = connected();
    server.device.refusePeer(peer, 'expired');
    // Unanswered data makes the client handshake again (§6.5: after KEEPALIVE + REKEY_TIMEOUT).
    client.send(server, 'let me in');
    const initiations = () => net.log.filter((d) => d.data[0] === MESSAGE_INITIATION).length;
    const before = initiations();
    net.advance(20_000, 500);
    expect(initiations()).toBeGreaterThan(before);
    expect(server.device.counters.handshake_refused_expired).toBeGreaterThan(0);
    expect(server.device.counters.unknown_peer).toBeUndefined();
    expect(server.device.counters.handshake_response_sent).toBe(1); // only the first, before the refusal
    const refusal = server.events.find((e) => e.type === 'drop' && e.reason === 'handshake_refused_expired');
    expect(refusal && 'peer' in refusal ? refusal.peer : undefined).toBe(peer);
    expect(client.peerOf(server).lastHandshakeAt).toBe(peer.lastHandshakeAt); // no new handshake completed
  });

  test('the server never sends to a refused peer (no data, no handshake initiation)', () => {
    const { net, server, peer } = connected();
    server.device.refusePeer(peer, 'disabled');
    server.device.send(peer, Buffer.from([0x45, 0, 0, 20]), net.now);
    server.device.initiateHandshake(peer, net.now);
    expect(net.inFlight).toHaveLength(0);
    expect(server.device.counters.send_refused_disabled).toBe(1);
  });

  test('admitting it again lets the next handshake through', () => {
    const { net, client, server, peer } = connected();
    server.device.refusePeer(peer, 'disabled');
    server.device.admitPeer(peer);
    client.send(server, 'lost in the cut');
    net.advance(20_000, 500);
    client.send(server, 'back again');
    net.flush();
    expect(server.texts()).toContain('back again');
    expect(peer.hasSession(net.now)).toBe(true);
  });
});
