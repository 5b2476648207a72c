import { dh, hmac, kdf1, kdf2, kdf3, PrivateKey, PublicKey } from '../../../../vpn/protocol/crypto';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// Expected values computed independently with Python's hmac + hashlib.blake2s
// (see wireguard_vectors.py).
describe('whitepaper §5.4 primitives', () => {
  test('HMAC-BLAKE2s equals Python hmac.new(key, msg, hashlib.blake2s)', () => {
    expect(hex(hmac(Buffer.from('key'), Buffer.from('The quick brown fox')))).toBe(
      '8717096fc5e7ac53d11d990acd4380c9ddd7bd8da5d8b5bc29855e6c98a866a4',
    );
  });

  test('KDF3 chain (HKDF with HMAC-BLAKE2s) matches an independent computation', () => {
    const [t1, t2, t3] = kdf3(Buffer.alloc(32), Buffer.from('input'));
    expect([hex(t1), hex(t2), hex(t3)]).toEqual([
      'fbff6119f265251560576e82518f61aeb420cff55b5dcf649475b758a01f3951',
      'a534dd2f7d3e7e614508dba7c675d5cf1008b383670cd8fd46231aa38bbfb618',
      '618328297d2af9af1df2c2ef6bba1ab41ddfb8e0fd0ee8bdb7ef237790eba011',
    ]);
  });

  test('KDF1 and KDF2 are prefixes of KDF3, and T_i = HMAC(T_0, T_{i-1} ‖ i) computed by hand agrees', () => {
    const key = Buffer.alloc(32, 9);
    const input = Buffer.from('chain');
    const [a, b, c] = kdf3(key, input);
    expect(hex(kdf1(key, input))).toBe(hex(a));
    expect(kdf2(key, input).map(hex)).toEqual([hex(a), hex(b)]);
    const t0 = hmac(key, input);
    const t1 = hmac(t0, Uint8Array.of(1));
    const t2 = hmac(t0, Buffer.concat([t1, Uint8Array.of(2)]));
    const t3 = hmac(t0, Buffer.concat([t2, Uint8Array.of(3)]));
    expect([hex(t1), hex(t2), hex(t3)]).toEqual([hex(a), hex(b), hex(c)]);
  });

  test('HMAC hashes keys longer than the 64-byte block first (RFC 2104)', () => {
    const long = Buffer.alloc(100, 7);
    expect(hex(hmac(long, Buffer.from('x')))).not.toBe(hex(hmac(long.subarray(0, 64), Buffer.from('x'))));
  });
});

describe('X25519 through sodium (RFC 7748 §6.1)', () => {
  const alicePriv = PrivateKey.fromBytes(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'));
  const bobPriv = PrivateKey.fromBytes(Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'));

  test('public keys and the shared secret match the RFC', () => {
    expect(hex(alicePriv.publicKey().bytes)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(hex(bobPriv.publicKey().bytes)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(hex(dh(alicePriv.bytes, bobPriv.publicKey().bytes) as Buffer)).toBe(shared);
    expect(hex(dh(bobPriv.bytes, alicePriv.publicKey().bytes) as Buffer)).toBe(shared);
  });

  test('DH with a low-order point yields null instead of an all-zero secret (§5.4)', () => {
    expect(dh(alicePriv.bytes, Buffer.alloc(32))).toBeNull();
  });
});

describe('keys', () => {
  test('generated private keys are clamped like "wg genkey"', () => {
    const k = PrivateKey.generate();
    expect(k.bytes[0] & 7).toBe(0);
    expect(k.bytes[31] & 0xc0).toBe(0x40);
  });

  test('base64 round trip of public and private keys', () => {
    const k = PrivateKey.generate();
    expect(PrivateKey.fromBase64(k.toBase64()).publicKey().equals(k.publicKey())).toBe(true);
    const pub = k.publicKey();
    expect(PublicKey.fromBase64(pub.toBase64()).equals(pub)).toBe(true);
  });

  test('malformed base64 or wrong length is refused with a message naming the key', () => {
    expect(() => PublicKey.fromBase64('abc')).toThrow(/public key must be 32 bytes/);
    expect(() => PrivateKey.fromBase64(Buffer.alloc(31).toString('base64'))).toThrow(/private key/);
  });

  test('a private key never prints its bytes', () => {
    const k = PrivateKey.generate();
    expect(String(k)).not.toContain(k.toBase64());
    expect(JSON.stringify({ k })).not.toContain(k.toBase64());
  });
});
