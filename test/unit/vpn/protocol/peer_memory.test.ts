// What a peer holds once its session is up and it goes idle (DESIGN.md: an
// idle peer costs under 4 KB; `npm run bench -- control` measures it): the
// session's keys and replay ring in one allocation of its own, no slice of
// Node's shared Buffer pool, no handshake or cookie state left over, no
// staged-packet list; and every secret dropped on the way is wiped first.
import { REKEY_TIMEOUT } from '../../../../vpn/protocol/constants';
import { PrivateKey, PublicKey } from '../../../../vpn/protocol/crypto';
import { Keypair } from '../../../../vpn/protocol/keypair';
import * as noise from '../../../../vpn/protocol/noise';
import { REPLAY_RING_BYTES } from '../../../../vpn/protocol/replay';
import { FakeNet } from './fake_net';

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

function connected() {
  const net = new FakeNet();
  const client = net.node('client');
  const server = net.node('server');
  net.link(client, server);
  client.send(server, 'hello');
  net.flush();
  return { net, client, server };
}

describe('an idle connected peer holds only its session', () => {
  test("a keypair's two keys and its replay ring share one allocation of its own, not a slice of the shared Buffer pool", () => {
    const { server, client } = connected();
    const kp = server.peerOf(client).current as Keypair;
    expect(kp.sendKey.buffer).toBe(kp.recvKey.buffer);
    expect(kp.sendKey.buffer.byteLength).toBe(2 * 32 + REPLAY_RING_BYTES);
  });

  test('a packet staged while a handshake waits is a copy with memory of its own, not a slice of the shared Buffer pool', () => {
    const net = new FakeNet();
    const client = net.node('client');
    const server = net.node('server');
    net.link(client, server);
    net.filter = () => false; // the handshake never completes: packets stay staged
    client.send(server, 'waiting');
    const [staged] = client.peerOf(server).staged;
    expect(staged.length).toBeGreaterThan(0);
    expect(staged.buffer.byteLength).toBe(staged.length);
  });

  test('a keypair copies the keys it is given, so the caller can wipe its own', () => {
    const send = Buffer.alloc(32, 1);
    const recv = Buffer.alloc(32, 2);
    const kp = new Keypair(send, recv, true, 0, 1, 2);
    send.fill(0);
    recv.fill(0);
    expect(kp.sendKey.equals(Buffer.alloc(32, 1))).toBe(true);
    expect(kp.recvKey.equals(Buffer.alloc(32, 2))).toBe(true);
  });

  test('the session keys the handshake derived are wiped once copied into the keypair', () => {
    const derived: Buffer[] = [];
    const original = noise.deriveSessionKeys;
    const spy = jest.spyOn(noise, 'deriveSessionKeys').mockImplementation((hs) => {
      const keys = original(hs);
      if (keys) derived.push(keys.sendKey, keys.recvKey);
      return keys;
    });
    try {
      const { server, client } = connected();
      expect(server.texts()).toEqual(['hello']);
      expect(derived).toHaveLength(4); // both sides
      expect(derived.filter((b) => !isZero(b))).toEqual([]);
      expect(isZero((server.peerOf(client).current as Keypair).recvKey)).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  test('a key parsed from base64 holds 32 bytes of its own, not a slice of the shared Buffer pool', () => {
    const text = PrivateKey.generate().publicKey().toBase64();
    const key = PublicKey.fromBase64(text);
    expect(key.bytes.buffer.byteLength).toBe(32);
    expect(key.toBase64()).toBe(text);
  });

  test("a peer's public key lives in its handshake allocation and still names it after removal (only the secrets are wiped)", () => {
    const { server, client } = connected();
    const peer = server.peerOf(client);
    const text = client.device.publicKey.toBase64();
    expect(peer.publicKey.bytes.buffer.byteLength).toBeGreaterThan(32);
    server.device.removePeer(peer.publicKey);
    expect(peer.publicKey.bytes.toString('base64')).toBe(text);
    expect(peer.handshake.precomputedStaticStatic && isZero(peer.handshake.precomputedStaticStatic)).toBe(true);
  });

  test('once the session is up neither side keeps a cookie generator; the next handshake makes one again', () => {
    const { net, server, client } = connected();
    expect(server.peerOf(client).holdsCookies).toBe(false);
    expect(client.peerOf(server).holdsCookies).toBe(false);
    net.advance(REKEY_TIMEOUT + 100); // a new initiation is rate-limited to one per REKEY_TIMEOUT
    client.device.initiateHandshake(client.peerOf(server), net.now);
    expect(client.peerOf(server).holdsCookies).toBe(true);
    net.flush();
    expect(client.peerOf(server).holdsCookies).toBe(false);
    expect(client.eventTypes().filter((t) => t === 'handshake_complete')).toHaveLength(2);
  });

  test('a cookie still fresh when the session starts is kept for the next handshake message (§5.4.7)', () => {
    const net = new FakeNet();
    const client = net.node('client');
    const server = net.node('server');
    net.link(client, server);
    server.device.forceUnderLoad(true);
    client.send(server, 'queued');
    net.flush();
    net.advance(REKEY_TIMEOUT + 400); // the retransmission carries mac2 and completes
    expect(server.texts()).toEqual(['queued']);
    expect(client.peerOf(server).holdsCookies).toBe(true);
    expect(client.peerOf(server).cookies.hasFreshCookie(net.now)).toBe(true);
  });

  test('an idle peer holds no staged-packet list: one exists only while a packet waits for a session', () => {
    const net = new FakeNet();
    const client = net.node('client');
    const server = net.node('server');
    net.link(client, server);
    const peer = client.peerOf(server);
    expect(Object.isFrozen(peer.staged)).toBe(true); // the one shared empty list
    client.send(server, 'waits');
    expect(peer.staged).toHaveLength(1);
    expect(Object.isFrozen(peer.staged)).toBe(false);
    net.flush();
    expect(server.texts()).toEqual(['waits']);
    expect(peer.staged).toHaveLength(0);
    expect(Object.isFrozen(peer.staged)).toBe(true);
  });
});
