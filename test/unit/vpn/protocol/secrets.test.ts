// Key material is wiped (sodium_memzero) as soon as it is no longer needed:
// a heap dump or a core file of a long-running concentrator should hold the
// keys of live sessions only, never the intermediates of past handshakes or
// the keys of removed peers.
import * as crypto from '../../../../vpn/protocol/crypto';
import { CookieGenerator } from '../../../../vpn/protocol/cookie';
import {
  consumeInitiation, consumeResponse, createInitiation, createResponse, deriveSessionKeys, Handshake, INIT_TIMESTAMP, tai64n,
} from '../../../../vpn/protocol/noise';
import { FakeNet } from './fake_net';
import { initiator, psk, responder, WALL_MS } from './identities';

const { PrivateKey } = crypto;
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

/** Records every buffer the DH and KDF primitives return while `fn` runs. */
function madeDuring(fn: () => void): Buffer[] {
  const made: Buffer[] = [];
  const spies = (['dh', 'kdf1', 'kdf2', 'kdf3'] as const).map((name) => {
    const original = crypto[name] as (...args: Uint8Array[]) => Buffer | Buffer[] | null;
    return jest.spyOn(crypto, name).mockImplementation(((...args: Uint8Array[]) => {
      const out = original(...args);
      if (Array.isArray(out)) made.push(...out);
      else if (out !== null) made.push(out);
      return out;
    }) as never);
  });
  try {
    fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return made;
}

function initiation(hsI: Handshake): Buffer {
  const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(WALL_MS));
  if (typeof init === 'string') throw new Error(init);
  new CookieGenerator(responder.publicKey).addMacs(init, 0);
  return init;
}

describe('handshake secrets are wiped (sodium_memzero)', () => {
  test('every DH result and KDF output of the four handshake steps is zero once each message is built or consumed', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const hsR = new Handshake(responder, initiator.publicKey, psk);
    const made = madeDuring(() => {
      const init = initiation(hsI);
      expect(consumeInitiation(responder, init, 0, () => hsR)).toBe(hsR);
      const resp = createResponse(hsR, 2, PrivateKey.generate().bytes);
      if (typeof resp === 'string') throw new Error(resp);
      expect(consumeResponse(initiator, hsI, resp)).toBe(hsI);
    });
    // es, ee, se twice each, and a dozen chaining keys, AEAD keys and tau.
    expect(made.length).toBeGreaterThan(20);
    expect(made.filter((b) => !isZero(b))).toEqual([]);
    // The handshake still worked: both sides derive matching session keys.
    const ki = deriveSessionKeys(hsI);
    const kr = deriveSessionKeys(hsR);
    expect(ki?.sendKey.equals(kr?.recvKey ?? Buffer.alloc(0))).toBe(true);
  });

  test('a rejected initiation (tampered timestamp) leaves no intermediate behind either', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const hsR = new Handshake(responder, initiator.publicKey, psk);
    const init = initiation(hsI);
    init[INIT_TIMESTAMP] ^= 1;
    const made = madeDuring(() => expect(consumeInitiation(responder, init, 0, () => hsR)).toBe('decrypt_failed'));
    expect(made.length).toBeGreaterThan(3);
    expect(made.filter((b) => !isZero(b))).toEqual([]);
  });

  test('the ephemeral private key is wiped when the session keys are derived, and when a response cannot be built', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const ephemeral = PrivateKey.generate().bytes;
    const init = createInitiation(initiator, hsI, 1, ephemeral, tai64n(WALL_MS));
    expect(typeof init).not.toBe('string');
    expect(isZero(ephemeral)).toBe(false);
    hsI.clear();
    expect(isZero(ephemeral)).toBe(true);

    const unused = PrivateKey.generate().bytes;
    expect(createResponse(new Handshake(responder, initiator.publicKey), 2, unused)).toBe('unexpected_response');
    expect(isZero(unused)).toBe(true);
  });

  test('destroy() wipes the per-peer precomputed DH(S,S) and the preshared key', () => {
    const hs = new Handshake(responder, initiator.publicKey, psk);
    const ss = hs.precomputedStaticStatic;
    const q = hs.presharedKey;
    expect(ss !== null && !isZero(ss) && !isZero(q)).toBe(true);
    hs.destroy();
    expect(ss !== null && isZero(ss) && isZero(q)).toBe(true);
  });
});

describe('removing a peer wipes all of its key material', () => {
  test('precomputed DH, preshared key, pending handshake and every session key are zero after removePeer', () => {
    const net = new FakeNet();
    const client = net.node('client');
    const server = net.node('server');
    net.link(client, server, { psk: Buffer.alloc(32, 7) });
    client.send(server, 'hello');
    net.flush();
    expect(server.texts()).toEqual(['hello']);
    const peer = server.peerOf(client);
    // A handshake in progress too: the server initiates a rekey that is never answered.
    net.filter = () => false;
    server.device.initiateHandshake(peer, net.now + 10_000);
    const held = [
      peer.handshake.precomputedStaticStatic as Buffer,
      peer.handshake.presharedKey,
      peer.handshake.chainKey,
      peer.handshake.localEphemeral as Buffer,
      ...[peer.current, peer.previous, peer.next].flatMap((kp) => (kp ? [kp.sendKey, kp.recvKey] : [])),
    ];
    expect(held.length).toBeGreaterThanOrEqual(6);
    expect(held.filter(isZero)).toEqual([]);
    server.device.removePeer(client.publicKey);
    expect(held.filter((b) => !isZero(b))).toEqual([]);
  });
});
