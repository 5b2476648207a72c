// Per-peer handshake state across its life: working buffers that exist only
// during a handshake, and what must survive clear() (whitepaper §5.1, §5.4).
import { CookieGenerator } from '../../../../vpn/protocol/cookie';
import { PrivateKey } from '../../../../vpn/protocol/crypto';
import {
  consumeInitiation, consumeResponse, createInitiation, createResponse, deriveSessionKeys, Handshake, tai64n,
} from '../../../../vpn/protocol/noise';
import { initiator, psk, responder, WALL_MS } from './identities';

function handshake(hsI: Handshake, hsR: Handshake, wallMs: number, now: number): { init: Buffer; keysEqual: boolean } {
  const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(wallMs));
  if (typeof init === 'string') throw new Error(init);
  new CookieGenerator(responder.publicKey).addMacs(init, now);
  expect(consumeInitiation(responder, init, now, () => hsR)).toBe(hsR);
  const resp = createResponse(hsR, 2, PrivateKey.generate().bytes);
  if (typeof resp === 'string') throw new Error(resp);
  expect(consumeResponse(initiator, hsI, resp)).toBe(hsI);
  const ki = deriveSessionKeys(hsI);
  const kr = deriveSessionKeys(hsR);
  return { init, keysEqual: ki !== null && kr !== null && ki.sendKey.equals(kr.recvKey) && ki.recvKey.equals(kr.sendKey) };
}

describe('Handshake state', () => {
  test('consecutive handshakes with the same peer state derive matching keys each time (PSK and DH(S,S) kept)', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const hsR = new Handshake(responder, initiator.publicKey, psk);
    expect(handshake(hsI, hsR, WALL_MS, 0).keysEqual).toBe(true);
    expect(handshake(hsI, hsR, WALL_MS + 1000, 10_000).keysEqual).toBe(true);
  });

  test('a replayed initiation is refused after the session was derived: the latest timestamp outlives clear() (§5.1)', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const hsR = new Handshake(responder, initiator.publicKey, psk);
    const { init } = handshake(hsI, hsR, WALL_MS, 0);
    expect(hsR.state).toBe('zeroed');
    expect(consumeInitiation(responder, init, 10_000, () => hsR)).toBe('stale_timestamp');
  });

  test('clear() zeroes the hash, chaining key and remote ephemeral it held (§5.4.5: erase after deriving keys)', () => {
    const hsI = new Handshake(initiator, responder.publicKey, psk);
    const hsR = new Handshake(responder, initiator.publicKey, psk);
    const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(WALL_MS));
    if (typeof init === 'string') throw new Error(init);
    consumeInitiation(responder, init, 0, () => hsR);
    const held = [hsR.hash, hsR.chainKey, hsR.remoteEphemeral];
    expect(held.every((b) => b.some((x) => x !== 0))).toBe(true);
    hsR.clear();
    expect(held.every((b) => b.every((x) => x === 0))).toBe(true);
  });

  test('a peer without a preshared key uses the all-zero key (§5.4.3: Q = 0^32)', () => {
    const hs = new Handshake(responder, initiator.publicKey);
    expect(hs.presharedKey.equals(Buffer.alloc(32))).toBe(true);
  });

  test('a preshared key of the wrong length is refused', () => {
    expect(() => new Handshake(responder, initiator.publicKey, Buffer.alloc(31))).toThrow(/preshared key must be 32 bytes/);
  });
});
