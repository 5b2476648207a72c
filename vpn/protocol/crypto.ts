// Whitepaper §5.4 primitives: HASH, MAC, HMAC, KDF1..3, AEAD, XAEAD, DH.
import { ownCopy } from '../../netstack/wire';
import { Blake2s } from './blake2s';
import { AEAD_TAG_LEN, HASH_LEN, KEY_LEN, MAC_LEN } from './constants';
import { sodium } from './sodium';

const HMAC_BLOCK_LEN = 64;

/** HASH(a || b || ...) = BLAKE2s-256. */
export function hash(...parts: Uint8Array[]): Buffer {
  const h = new Blake2s(HASH_LEN);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MixHash: h := HASH(h || data), written back into `h`. */
export function mixHash(h: Buffer, data: Uint8Array): void {
  new Blake2s(HASH_LEN).update(h).update(data).digest(h);
}

/** MAC(key, input) = keyed BLAKE2s with a 16-byte output (mac1, mac2, cookie). */
export function mac(key: Uint8Array, input: Uint8Array, out?: Buffer): Buffer {
  return new Blake2s(MAC_LEN, key).update(input).digest(out);
}

const ipadKey = Buffer.alloc(HMAC_BLOCK_LEN);
const opadKey = Buffer.alloc(HMAC_BLOCK_LEN);

/** HMAC-BLAKE2s (RFC 2104 with a 64-byte block), as the whitepaper's HMAC. */
export function hmac(key: Uint8Array, ...input: Uint8Array[]): Buffer {
  wipe(ipadKey);
  ipadKey.set(key.length > HMAC_BLOCK_LEN ? hash(key) : key);
  opadKey.set(ipadKey);
  for (let i = 0; i < HMAC_BLOCK_LEN; i++) {
    ipadKey[i] ^= 0x36;
    opadKey[i] ^= 0x5c;
  }
  const inner = new Blake2s(HASH_LEN).update(ipadKey);
  for (const p of input) inner.update(p);
  const innerDigest = inner.digest();
  const out = new Blake2s(HASH_LEN).update(opadKey).update(innerDigest).digest();
  wipe(ipadKey);
  wipe(opadKey);
  wipe(innerDigest);
  return out;
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF_n (§5.4.2, HKDF with HMAC-BLAKE2s): returns n 32-byte outputs. */
function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Buffer[] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  const out = [t1];
  if (n >= 2) out.push(hmac(t0, t1, TWO));
  if (n === 3) out.push(hmac(t0, out[1], THREE));
  wipe(t0);
  return out;
}

export function kdf1(key: Uint8Array, input: Uint8Array): Buffer {
  return kdf(1, key, input)[0];
}
export function kdf2(key: Uint8Array, input: Uint8Array): [Buffer, Buffer] {
  const [a, b] = kdf(2, key, input);
  return [a, b];
}
export function kdf3(key: Uint8Array, input: Uint8Array): [Buffer, Buffer, Buffer] {
  const [a, b, c] = kdf(3, key, input);
  return [a, b, c];
}

const ZERO_NONCE = Buffer.alloc(12);

/** AEAD(key, 0, plaintext, ad): handshake messages always use counter 0 (§5.4.2). */
export function aeadSeal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LEN);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad, null, ZERO_NONCE, key);
  return out;
}

/** Inverse of aeadSeal; null when authentication fails. */
export function aeadOpen(key: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Buffer | null {
  if (ciphertext.length < AEAD_TAG_LEN) return null;
  const out = Buffer.allocUnsafe(ciphertext.length - AEAD_TAG_LEN);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, ciphertext, ad, ZERO_NONCE, key);
  } catch {
    return null; // sodium-native signals a failed tag check by throwing
  }
  return out;
}

/** XAEAD (XChaCha20-Poly1305), used only for cookie replies (§5.4.7). */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LEN);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key);
  return out;
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Buffer | null {
  if (ciphertext.length < AEAD_TAG_LEN) return null;
  const out = Buffer.allocUnsafe(ciphertext.length - AEAD_TAG_LEN);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, ad, nonce, key);
  } catch {
    return null;
  }
  return out;
}

/** DH(priv, pub) = X25519; null for a low-order point (all-zero result), which §5.4 forbids. */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null {
  const out = Buffer.alloc(KEY_LEN);
  try {
    sodium.crypto_scalarmult(out, privateKey, publicKey);
  } catch {
    return null; // libsodium refuses an all-zero shared secret
  }
  return out;
}

/** Wipes secret bytes (sodium_memzero: a zeroing the optimizer cannot drop). */
export function wipe(b: Uint8Array): void {
  sodium.sodium_memzero(b);
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium.sodium_memcmp(a, b);
}

export function defaultRandom(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  sodium.randombytes_buf(b);
  return b;
}

function decodeKey(text: string, what: string): Buffer {
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== KEY_LEN || bytes.toString('base64') !== text.trim()) {
    throw new Error(`${what} must be 32 bytes in base64 (as printed by "wg genkey"/"wg pubkey"), got ${JSON.stringify(text)}`);
  }
  return bytes;
}

/** A Curve25519 public key (static identity of a peer). */
export class PublicKey {
  private constructor(
    readonly bytes: Buffer,
    /** The base64 form, kept once made: the maps of peers are keyed by it, and one string then serves them all. */
    private base64: string | null,
  ) {}

  static fromBytes(bytes: Uint8Array): PublicKey {
    if (bytes.length !== KEY_LEN) throw new Error(`public key must be 32 bytes, got ${bytes.length}`);
    return new PublicKey(ownCopy(bytes), null);
  }

  static fromBase64(text: string): PublicKey {
    const canonical = text.trim();
    return new PublicKey(ownCopy(decodeKey(canonical, 'public key')), canonical);
  }

  /**
   * The same key over `memory` (32 bytes), without a copy: for an owner that
   * keeps it inside an allocation of its own (noise.ts: one per peer) and
   * never changes those bytes.
   */
  rehomed(memory: Buffer): PublicKey {
    if (memory.length !== KEY_LEN) throw new Error(`public key must be 32 bytes, got ${memory.length}`);
    memory.set(this.bytes);
    return new PublicKey(memory, this.base64);
  }

  toBase64(): string {
    return (this.base64 ??= this.bytes.toString('base64'));
  }

  toString(): string {
    return this.toBase64();
  }

  equals(other: PublicKey): boolean {
    return this.bytes.equals(other.bytes);
  }
}

/** A Curve25519 private key, clamped as by "wg genkey". */
export class PrivateKey {
  private constructor(readonly bytes: Buffer) {}

  static generate(random: (n: number) => Buffer = defaultRandom): PrivateKey {
    const drawn = random(KEY_LEN);
    const bytes = ownCopy(drawn);
    wipe(drawn);
    clamp(bytes);
    return new PrivateKey(bytes);
  }

  static fromBytes(bytes: Uint8Array): PrivateKey {
    if (bytes.length !== KEY_LEN) throw new Error(`private key must be 32 bytes, got ${bytes.length}`);
    return new PrivateKey(ownCopy(bytes));
  }

  static fromBase64(text: string): PrivateKey {
    const decoded = decodeKey(text, 'private key');
    const key = new PrivateKey(ownCopy(decoded));
    wipe(decoded);
    return key;
  }

  publicKey(): PublicKey {
    const pub = Buffer.alloc(KEY_LEN);
    sodium.crypto_scalarmult_base(pub, this.bytes);
    return PublicKey.fromBytes(pub);
  }

  toBase64(): string {
    return this.bytes.toString('base64');
  }

  /** Never print key material by accident (loggers call toString / toJSON). */
  toString(): string {
    return 'PrivateKey(<redacted>)';
  }

  toJSON(): string {
    return this.toString();
  }
}

/** RFC 7748 §5 clamping; X25519 clamps again internally, this keeps stored keys canonical. */
function clamp(k: Buffer): void {
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
}
