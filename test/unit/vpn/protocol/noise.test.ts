// Known-answer test of the whole handshake against an independent Python
// implementation (wireguard_vectors.py: hashlib, hmac, pyca/cryptography).
import { CookieGenerator } from '../../../../vpn/protocol/cookie';
import { PrivateKey } from '../../../../vpn/protocol/crypto';
import { Keypair } from '../../../../vpn/protocol/keypair';
import {
  consumeInitiation, consumeResponse, createInitiation, createResponse, deriveSessionKeys, Handshake, tai64n,
} from '../../../../vpn/protocol/noise';
import { openTransport, sealTransport } from '../../../../vpn/protocol/transport';
import { DeviceOutput } from '../../../../vpn/protocol/output';

const V = {
  initiation: '0100000044332211e91cb54a921625d460fb12619c852bb40a21b4e55077827fd19a9bca6607cd5c709ef4a2d417fd68258faf87fad408ad8720d9596aed9e3d81051b2f05f98fa65fabec99b06baebea4217a5155fa565f54cf09b6219fd4b1e90305dfd5938939e40f43ad42bd84f02e65527595c92d0cfd459e45282bc407b67e96a100000000000000000000000000000000',
  response: '02000000887766554433221183b5a6ba9c40fbdba070e69b84ff3d88191fba6b8c604849de918e5a5743ef3c6d550d9c7119eafbcb35edb290840d048e211ecf8853d25cdb0c644ff307316700000000000000000000000000000000',
  sendKeyInitiator: 'dacf8b344d4d108b7b2a3a5039b460ba5d001e4903a9eaad33403f6a7dedfe97',
  recvKeyInitiator: 'd2f2063d1edc01cfc5caf8c63e7a7262b0fb41928ed2d626ef42f57ba34fde74',
  data: '040000008877665500000000000000007d1e7e5f4a0c78f0ff57a43874be2db0dfedc0c71924f32c12289bec911fc6bfdbbf3d514bd5f9005f5a3c538832de97',
  timestamp: '400000006955b90a07000000',
  ephemeralInitiator: '620be318ccfe9b1685ba2954a24c1b57f2cec0e57e5e2e0ae7c831e91d14309f',
  ephemeralResponder: '4f59b20a2e70ef843c89814a5b15c851882fccafd2ffbde0f825b60d0f90f5ae',
};
const b = (h: string): Buffer => Buffer.from(h, 'hex');
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');

const initPriv = PrivateKey.fromBytes(b('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
const respPriv = PrivateKey.fromBytes(b('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
const initiator = { privateKey: initPriv, publicKey: initPriv.publicKey() };
const responder = { privateKey: respPriv, publicKey: respPriv.publicKey() };
const psk = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x40 + i));
const WALL_MS = Date.UTC(2026, 0, 1) + 123; // the vector's 2026-01-01T00:00:00.123456789Z, whitened

function runHandshake(): { init: Buffer; resp: Buffer; hsI: Handshake; hsR: Handshake } {
  const hsI = new Handshake(initiator, responder.publicKey, psk);
  const hsR = new Handshake(responder, initiator.publicKey, psk);
  const init = createInitiation(initiator, hsI, 0x11223344, b(V.ephemeralInitiator), tai64n(WALL_MS));
  if (typeof init === 'string') throw new Error(init);
  new CookieGenerator(responder.publicKey).addMacs(init, 0);
  const consumed = consumeInitiation(responder, init, 0, () => hsR);
  if (consumed !== hsR) throw new Error(String(consumed));
  const resp = createResponse(hsR, 0x55667788, b(V.ephemeralResponder));
  if (typeof resp === 'string') throw new Error(resp);
  new CookieGenerator(initiator.publicKey).addMacs(resp, 0);
  return { init, resp, hsI, hsR };
}

describe('Noise_IKpsk2 handshake known answers', () => {
  test('TAI64N: 2^62 + 10 + seconds, nanoseconds whitened to 2^24 ns', () => {
    expect(hex(tai64n(WALL_MS))).toBe(V.timestamp);
  });

  test('initiation message (with mac1) is byte-identical to the independent vector', () => {
    expect(hex(runHandshake().init)).toBe(V.initiation);
  });

  test('response message (with mac1) is byte-identical to the independent vector', () => {
    expect(hex(runHandshake().resp)).toBe(V.response);
  });

  test('both sides derive the vector transport keys, mirrored (§5.4.5)', () => {
    const { resp, hsI, hsR } = runHandshake();
    expect(consumeResponse(initiator, hsI, resp)).toBe(hsI);
    const ki = deriveSessionKeys(hsI);
    const kr = deriveSessionKeys(hsR);
    expect(ki && hex(ki.sendKey)).toBe(V.sendKeyInitiator);
    expect(ki && hex(ki.recvKey)).toBe(V.recvKeyInitiator);
    expect(kr && hex(kr.recvKey)).toBe(V.sendKeyInitiator);
    expect(kr && hex(kr.sendKey)).toBe(V.recvKeyInitiator);
    expect(hsI.state).toBe('zeroed');
    expect(hsI.chainKey.equals(Buffer.alloc(32))).toBe(true);
  });

  test('first transport message (counter 0, padded to 16) matches the vector and decrypts', () => {
    const kp = new Keypair(b(V.sendKeyInitiator), b(V.recvKeyInitiator), true, 0, 0x11223344, 0x55667788);
    const packet = Buffer.concat([b('4500001900000000401100000a0000010a000002'), Buffer.from('hello')]);
    const msg = sealTransport(kp, packet);
    expect(hex(msg)).toBe(V.data);
    expect(kp.sendCounter).toBe(1n);
    const rx = new Keypair(b(V.recvKeyInitiator), b(V.sendKeyInitiator), false, 0, 0x55667788, 0x11223344);
    expect(hex(openTransport(rx, msg) as Buffer)).toBe(hex(Buffer.concat([packet, Buffer.alloc(7)])));
  });

  test('the device output numbers transport messages into reused records, sealed by the writer to the same vector', () => {
    const kp = new Keypair(b(V.sendKeyInitiator), b(V.recvKeyInitiator), true, 0, 0x11223344, 0x55667788);
    const packet = Buffer.concat([b('4500001900000000401100000a0000010a000002'), Buffer.from('hello')]);
    const out = new DeviceOutput();
    const to = { address: '192.0.2.1', port: 51820 };
    const t = out.sendTransport(kp, packet, to);
    expect(kp.sendCounter).toBe(1n); // numbered at once, sealed later
    expect(out.datagrams).toEqual([t]);
    expect(out.endpoints).toEqual([to]);
    expect(t.sealedLength).toBe(V.data.length / 2);
    expect(hex(out.bytes(0))).toBe(V.data);
    out.clear();
    const again = out.sendTransport(kp, packet, to);
    expect(again).toBe(t);
    expect([again.counterLo, again.counterHi]).toEqual([1, 0]);
  });
});

describe('handshake rejections', () => {
  test('a response to an initiation made with another PSK fails to decrypt (psk2 binds the PSK)', () => {
    const hsI = new Handshake(initiator, responder.publicKey, Buffer.alloc(32, 1));
    const hsR = new Handshake(responder, initiator.publicKey, Buffer.alloc(32, 2));
    const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(WALL_MS)) as Buffer;
    expect(consumeInitiation(responder, init, 0, () => hsR)).toBe(hsR);
    const resp = createResponse(hsR, 2, PrivateKey.generate().bytes) as Buffer;
    expect(consumeResponse(initiator, hsI, resp)).toBe('decrypt_failed');
    expect(hsI.state).toBe('initiation_created');
  });

  test('an initiation whose timestamp is not newer than the last accepted one is stale (§5.1 replay)', () => {
    const hsI = new Handshake(initiator, responder.publicKey);
    const hsR = new Handshake(responder, initiator.publicKey);
    const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(WALL_MS)) as Buffer;
    expect(consumeInitiation(responder, init, 0, () => hsR)).toBe(hsR);
    expect(consumeInitiation(responder, init, 1000, () => hsR)).toBe('stale_timestamp');
  });

  test('a flipped bit in the encrypted static key fails authentication', () => {
    const hsI = new Handshake(initiator, responder.publicKey);
    const hsR = new Handshake(responder, initiator.publicKey);
    const init = createInitiation(initiator, hsI, 1, PrivateKey.generate().bytes, tai64n(WALL_MS)) as Buffer;
    init[50] ^= 1;
    expect(consumeInitiation(responder, init, 0, () => hsR)).toBe('decrypt_failed');
    expect(hsR.state).toBe('zeroed');
  });
});
