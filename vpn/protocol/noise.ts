// Noise_IKpsk2 handshake as in the whitepaper §5.4.2-§5.4.5: building and
// consuming initiation (type 1) and response (type 2) messages. MAC fields are
// filled/checked by cookie.ts; index allocation and peer state live in device.ts.
import {
  AEAD_TAG_LEN, CONSTRUCTION, HANDSHAKE_INITIATION_RATE, HASH_LEN, IDENTIFIER, KEY_LEN,
  MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE, TIMESTAMP_LEN,
} from './constants';
import { aeadOpen, aeadSeal, dh, hash, kdf1, kdf2, kdf3, mixHash, PrivateKey, PublicKey, wipe } from './crypto';
import { sodium } from './sodium';

// Initiation layout (§5.4.2).
export const INIT_SENDER = 4;
export const INIT_EPHEMERAL = 8;
export const INIT_STATIC = 40;
export const INIT_TIMESTAMP = 88;
const INIT_STATIC_LEN = KEY_LEN + AEAD_TAG_LEN;
const INIT_TIMESTAMP_LEN = TIMESTAMP_LEN + AEAD_TAG_LEN;
// Response layout (§5.4.3).
export const RESP_SENDER = 4;
export const RESP_RECEIVER = 8;
export const RESP_EPHEMERAL = 12;
export const RESP_EMPTY = 44;

/** C = HASH(CONSTRUCTION); H = HASH(C ‖ IDENTIFIER): the same for every handshake. */
const INITIAL_CHAIN_KEY = hash(Buffer.from(CONSTRUCTION, 'utf8'));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, Buffer.from(IDENTIFIER, 'utf8'));
const EMPTY = Buffer.alloc(0);

export type HandshakeState =
  | 'zeroed' | 'initiation_created' | 'initiation_consumed' | 'response_created' | 'response_consumed';

export type NoiseError = 'decrypt_failed' | 'unknown_peer' | 'stale_timestamp' | 'handshake_flood'
  | 'bad_ephemeral' | 'unexpected_response';

export interface StaticIdentity {
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
}

// One peer's keys for handshakes: DH(S_priv, S_pub_peer) then the PSK, the
// greatest TAI64N accepted from it, and its static public key, in one
// allocation (an ArrayBuffer costs ~100 bytes of heap beyond its bytes).
const SS_OFFSET = 0;
const PSK_OFFSET = KEY_LEN;
const TIMESTAMP_OFFSET = 2 * KEY_LEN;
const SECRETS_LEN = 2 * KEY_LEN;
const REMOTE_STATIC_OFFSET = 2 * KEY_LEN + TIMESTAMP_LEN;
// Handshake working state: hash, chaining key, remote ephemeral.
const HASH_OFFSET = 0;
const CHAIN_KEY_OFFSET = HASH_LEN;
const REMOTE_EPHEMERAL_OFFSET = 2 * HASH_LEN;
const WORK_LEN = 2 * HASH_LEN + KEY_LEN;

interface HandshakeWork {
  readonly all: Buffer;
  readonly hash: Buffer;
  readonly chainKey: Buffer;
  readonly remoteEphemeral: Buffer;
}

/**
 * Per-peer handshake state (wireguard-go's Handshake). The working buffers
 * exist only between the first message and deriveSessionKeys (clear() drops
 * them): an idle peer holds only its two keys and the latest timestamp, in
 * one allocation. DESIGN.md: an idle peer costs under 4 KB.
 */
export class Handshake {
  state: HandshakeState = 'zeroed';
  localEphemeral: Buffer | null = null;
  localIndex = 0;
  remoteIndex = 0;
  lastInitiationConsumedAt = -Infinity;
  private work: HandshakeWork | null = null;
  private readonly keys: Buffer;
  private readonly lowOrder: boolean;
  /** The peer's static key, kept in this handshake's allocation (the peer's own publicKey is this one). */
  readonly remoteStatic: PublicKey;

  constructor(identity: StaticIdentity, remoteStatic: PublicKey, presharedKey?: Uint8Array) {
    if (presharedKey && presharedKey.length !== KEY_LEN) throw new Error(`preshared key must be 32 bytes, got ${presharedKey.length}`);
    this.keys = Buffer.alloc(REMOTE_STATIC_OFFSET + KEY_LEN);
    this.remoteStatic = remoteStatic.rehomed(this.keys.subarray(REMOTE_STATIC_OFFSET));
    const ss = dh(identity.privateKey.bytes, remoteStatic.bytes);
    this.lowOrder = ss === null;
    if (ss) {
      ss.copy(this.keys, SS_OFFSET);
      wipe(ss);
    }
    if (presharedKey) this.keys.set(presharedKey, PSK_OFFSET);
  }

  get hash(): Buffer {
    return this.workBuffers().hash;
  }

  get chainKey(): Buffer {
    return this.workBuffers().chainKey;
  }

  get remoteEphemeral(): Buffer {
    return this.workBuffers().remoteEphemeral;
  }

  /** Greatest TAI64N accepted from this peer: replay protection for initiations (§5.1). */
  get latestTimestamp(): Buffer {
    return this.keys.subarray(TIMESTAMP_OFFSET, TIMESTAMP_OFFSET + TIMESTAMP_LEN);
  }

  /** DH(S_priv, S_pub_peer), computed once per peer; null when the peer key is a low-order point. */
  get precomputedStaticStatic(): Buffer | null {
    return this.lowOrder ? null : this.keys.subarray(SS_OFFSET, SS_OFFSET + KEY_LEN);
  }

  /** Q of §5.4.3: all zeros when the peer has none. */
  get presharedKey(): Buffer {
    return this.keys.subarray(PSK_OFFSET, PSK_OFFSET + KEY_LEN);
  }

  /** Forget all handshake secrets (the latest timestamp is kept: it is replay state, not a secret). */
  clear(): void {
    if (this.work) wipe(this.work.all);
    this.work = null;
    if (this.localEphemeral) wipe(this.localEphemeral);
    this.localEphemeral = null;
    this.state = 'zeroed';
    this.localIndex = 0;
    this.remoteIndex = 0;
  }

  /**
   * The peer is gone: also wipe DH(S_priv, S_pub_peer) and the preshared key,
   * which live as long as the peer (they are needed for every handshake).
   */
  destroy(): void {
    this.clear();
    wipe(this.keys.subarray(0, SECRETS_LEN));
  }

  private workBuffers(): HandshakeWork {
    if (this.work === null) {
      const all = Buffer.alloc(WORK_LEN);
      this.work = {
        all,
        hash: all.subarray(HASH_OFFSET, HASH_OFFSET + HASH_LEN),
        chainKey: all.subarray(CHAIN_KEY_OFFSET, CHAIN_KEY_OFFSET + HASH_LEN),
        remoteEphemeral: all.subarray(REMOTE_EPHEMERAL_OFFSET, REMOTE_EPHEMERAL_OFFSET + KEY_LEN),
      };
    }
    return this.work;
  }
}

const TAI64_BASE = 0x400000000000000an; // 2^62 + 10: TAI64 label of the Unix epoch
const WHITENER_MASK = 0xffffff; // wireguard-go: hide sub-16ms timing from the responder

/** TAI64N of a wall-clock time in ms since the Unix epoch (§5.4.2 "TIMESTAMP()"). */
export function tai64n(wallMs: number): Buffer {
  const out = Buffer.alloc(TIMESTAMP_LEN);
  const seconds = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - seconds * 1000) * 1e6);
  out.writeBigUInt64BE(TAI64_BASE + BigInt(seconds), 0);
  out.writeUInt32BE((nanos & ~WHITENER_MASK) >>> 0, 8);
  return out;
}

function publicFromPrivate(priv: Buffer): Buffer {
  const pub = Buffer.alloc(KEY_LEN);
  sodium.crypto_scalarmult_base(pub, priv);
  return pub;
}

/**
 * The secrets a handshake message makes on its way (DH results, chaining
 * keys, AEAD keys, the running hash): each is registered when made and wiped
 * with sodium_memzero when the message is built or consumed, on success and
 * on every error path (wireguard-go's setZero of chainKey/key/hash).
 */
class Scratch {
  private readonly held: Buffer[] = [];

  keep<T extends Buffer | null>(b: T): T {
    if (b !== null) this.held.push(b);
    return b;
  }

  keepAll<T extends Buffer[]>(bs: T): T {
    for (const b of bs) this.held.push(b);
    return bs;
  }

  wipe(): void {
    for (const b of this.held) wipe(b);
    this.held.length = 0;
  }
}

/** Noise's EncryptAndHash: AEAD(k, 0, plaintext, h) into msg at `offset`, then h := HASH(h ‖ ciphertext). */
function encryptAndHash(k: Buffer, plaintext: Uint8Array, h: Buffer, msg: Buffer, offset: number): void {
  const sealed = aeadSeal(k, plaintext, h);
  sealed.copy(msg, offset);
  mixHash(h, sealed);
}

/** A message of ours is built: keep its hash, chaining key and ephemeral for the next step. */
function commitOurs(hs: Handshake, state: HandshakeState, h: Buffer, ck: Buffer, ephemeralPrivate: Buffer, localIndex: number): void {
  h.copy(hs.hash);
  ck.copy(hs.chainKey);
  hs.localEphemeral = ephemeralPrivate;
  hs.localIndex = localIndex;
  hs.state = state;
}

/** Builds an initiation (mac1/mac2 zero) and moves `hs` to initiation_created. */
export function createInitiation(
  identity: StaticIdentity, hs: Handshake, localIndex: number, ephemeralPrivate: Buffer, timestamp: Buffer,
): Buffer | NoiseError {
  const s = new Scratch();
  try {
    const ss = hs.precomputedStaticStatic;
    const es = s.keep(ss ? dh(ephemeralPrivate, hs.remoteStatic.bytes) : null);
    if (!ss || !es) {
      wipe(ephemeralPrivate);
      return 'bad_ephemeral';
    }
    const msg = Buffer.alloc(MESSAGE_INITIATION_SIZE);
    msg.writeUInt32LE(MESSAGE_INITIATION, 0);
    msg.writeUInt32LE(localIndex, INIT_SENDER);
    const h = s.keep(hash(INITIAL_HASH, hs.remoteStatic.bytes));
    const ePub = publicFromPrivate(ephemeralPrivate);
    ePub.copy(msg, INIT_EPHEMERAL);
    const ck1 = s.keep(kdf1(INITIAL_CHAIN_KEY, ePub));
    mixHash(h, ePub);
    const [ck2, k1] = s.keepAll(kdf2(ck1, es));
    encryptAndHash(k1, identity.publicKey.bytes, h, msg, INIT_STATIC);
    const [ck3, k2] = s.keepAll(kdf2(ck2, ss));
    encryptAndHash(k2, timestamp, h, msg, INIT_TIMESTAMP);
    commitOurs(hs, 'initiation_created', h, ck3, ephemeralPrivate, localIndex);
    return msg;
  } finally {
    s.wipe();
  }
}

/**
 * Consumes an initiation whose MACs were already checked. `lookup` maps the
 * decrypted initiator static key to that peer's Handshake. State is committed
 * only when every check passed, so a hostile message never disturbs a session.
 */
export function consumeInitiation(
  identity: StaticIdentity, msg: Buffer, now: number, lookup: (staticKey: Buffer) => Handshake | undefined,
): Handshake | NoiseError {
  const s = new Scratch();
  try {
    const h = s.keep(hash(INITIAL_HASH, identity.publicKey.bytes));
    const ePub = msg.subarray(INIT_EPHEMERAL, INIT_EPHEMERAL + KEY_LEN);
    mixHash(h, ePub);
    const ck1 = s.keep(kdf1(INITIAL_CHAIN_KEY, ePub));
    const es = s.keep(dh(identity.privateKey.bytes, ePub));
    if (!es) return 'bad_ephemeral';
    const [ck2, k1] = s.keepAll(kdf2(ck1, es));
    const encStatic = msg.subarray(INIT_STATIC, INIT_STATIC + INIT_STATIC_LEN);
    const staticKey = aeadOpen(k1, encStatic, h);
    if (!staticKey) return 'decrypt_failed';
    mixHash(h, encStatic);
    const hs = lookup(staticKey);
    if (!hs) return 'unknown_peer';
    if (!hs.precomputedStaticStatic) return 'bad_ephemeral';
    const [ck3, k2] = s.keepAll(kdf2(ck2, hs.precomputedStaticStatic));
    const encTimestamp = msg.subarray(INIT_TIMESTAMP, INIT_TIMESTAMP + INIT_TIMESTAMP_LEN);
    const timestamp = aeadOpen(k2, encTimestamp, h);
    if (!timestamp) return 'decrypt_failed';
    mixHash(h, encTimestamp);
    // §5.1: an initiation must carry a timestamp greater than any seen before,
    // so a captured initiation cannot be replayed to reset the session.
    if (timestamp.compare(hs.latestTimestamp) <= 0) return 'stale_timestamp';
    if (now - hs.lastInitiationConsumedAt < HANDSHAKE_INITIATION_RATE) return 'handshake_flood';
    timestamp.copy(hs.latestTimestamp);
    hs.lastInitiationConsumedAt = now;
    h.copy(hs.hash);
    ck3.copy(hs.chainKey);
    ePub.copy(hs.remoteEphemeral);
    hs.remoteIndex = msg.readUInt32LE(INIT_SENDER);
    if (hs.localEphemeral) wipe(hs.localEphemeral);
    hs.localEphemeral = null;
    hs.state = 'initiation_consumed';
    return hs;
  } finally {
    s.wipe();
  }
}

/** Builds the response (mac1/mac2 zero) to a consumed initiation. */
export function createResponse(hs: Handshake, localIndex: number, ephemeralPrivate: Buffer): Buffer | NoiseError {
  const s = new Scratch();
  try {
    const ee = s.keep(hs.state === 'initiation_consumed' ? dh(ephemeralPrivate, hs.remoteEphemeral) : null);
    const se = s.keep(ee ? dh(ephemeralPrivate, hs.remoteStatic.bytes) : null);
    if (!ee || !se) {
      wipe(ephemeralPrivate);
      return hs.state === 'initiation_consumed' ? 'bad_ephemeral' : 'unexpected_response';
    }
    const msg = Buffer.alloc(MESSAGE_RESPONSE_SIZE);
    msg.writeUInt32LE(MESSAGE_RESPONSE, 0);
    msg.writeUInt32LE(localIndex, RESP_SENDER);
    msg.writeUInt32LE(hs.remoteIndex, RESP_RECEIVER);
    const h = s.keep(Buffer.from(hs.hash));
    const ePub = publicFromPrivate(ephemeralPrivate);
    ePub.copy(msg, RESP_EPHEMERAL);
    const ck1 = s.keep(kdf1(hs.chainKey, ePub));
    mixHash(h, ePub);
    const ck2 = s.keep(kdf1(ck1, ee));
    const ck3 = s.keep(kdf1(ck2, se));
    const [ck4, tau, k] = s.keepAll(kdf3(ck3, hs.presharedKey));
    mixHash(h, tau);
    encryptAndHash(k, EMPTY, h, msg, RESP_EMPTY);
    commitOurs(hs, 'response_created', h, ck4, ephemeralPrivate, localIndex);
    return msg;
  } finally {
    s.wipe();
  }
}

/** Consumes a response to our initiation (MACs and receiver index already checked). */
export function consumeResponse(identity: StaticIdentity, hs: Handshake, msg: Buffer): Handshake | NoiseError {
  if (hs.state !== 'initiation_created' || !hs.localEphemeral) return 'unexpected_response';
  const s = new Scratch();
  try {
    const h = s.keep(Buffer.from(hs.hash));
    const ePub = msg.subarray(RESP_EPHEMERAL, RESP_EPHEMERAL + KEY_LEN);
    mixHash(h, ePub);
    const ck1 = s.keep(kdf1(hs.chainKey, ePub));
    const ee = s.keep(dh(hs.localEphemeral, ePub));
    const se = s.keep(dh(identity.privateKey.bytes, ePub));
    if (!ee || !se) return 'bad_ephemeral';
    const ck2 = s.keep(kdf1(ck1, ee));
    const ck3 = s.keep(kdf1(ck2, se));
    const [ck4, tau, k] = s.keepAll(kdf3(ck3, hs.presharedKey));
    mixHash(h, tau);
    const encEmpty = msg.subarray(RESP_EMPTY, RESP_EMPTY + AEAD_TAG_LEN);
    if (!aeadOpen(k, encEmpty, h)) return 'decrypt_failed';
    mixHash(h, encEmpty);
    h.copy(hs.hash);
    ck4.copy(hs.chainKey);
    hs.remoteIndex = msg.readUInt32LE(RESP_SENDER);
    hs.state = 'response_consumed';
    return hs;
  } finally {
    s.wipe();
  }
}

export interface SessionKeys {
  sendKey: Buffer;
  recvKey: Buffer;
  isInitiator: boolean;
  localIndex: number;
  remoteIndex: number;
}

/** §5.4.5: (T_send, T_recv) = KDF2(C, ε), then the handshake state is erased. */
export function deriveSessionKeys(hs: Handshake): SessionKeys | null {
  let isInitiator: boolean;
  if (hs.state === 'response_consumed') isInitiator = true;
  else if (hs.state === 'response_created') isInitiator = false;
  else return null;
  const [first, second] = kdf2(hs.chainKey, EMPTY);
  const keys: SessionKeys = {
    sendKey: isInitiator ? first : second,
    recvKey: isInitiator ? second : first,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  };
  hs.clear();
  return keys;
}
