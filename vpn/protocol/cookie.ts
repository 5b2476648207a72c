// MAC1/MAC2 and cookie replies (whitepaper §5.3, §5.4.4, §5.4.7).
import {
  COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_REFRESH_TIME, KEY_LEN, LABEL_COOKIE, LABEL_MAC1, MAC_LEN,
  MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE,
} from './constants';
import { constantTimeEqual, hash, mac, PublicKey, wipe, xaeadOpen, xaeadSeal } from './crypto';
import { Endpoint, endpointBytes } from './endpoint';

// Cookie reply layout (§5.4.7).
export const COOKIE_RECEIVER = 4;
export const COOKIE_NONCE = 8;
export const COOKIE_ENCRYPTED = 32;
const COOKIE_ENCRYPTED_LEN = COOKIE_LEN + 16;

const LABEL_MAC1_BYTES = Buffer.from(LABEL_MAC1, 'utf8');
const LABEL_COOKIE_BYTES = Buffer.from(LABEL_COOKIE, 'utf8');

function mac1Offset(msg: Buffer): number {
  return msg.length - 2 * MAC_LEN;
}
function mac2Offset(msg: Buffer): number {
  return msg.length - MAC_LEN;
}

/**
 * The receiving side of MACs, keyed by our own static public key: checks mac1
 * of every handshake message, and under load binds mac2 to a cookie derived
 * from the sender's address and a secret that changes every 2 minutes.
 */
export class CookieChecker {
  private readonly mac1Key: Buffer;
  private readonly cookieKey: Buffer;
  private readonly secret = Buffer.alloc(KEY_LEN);
  private secretSetAt = -Infinity;
  private readonly scratch = Buffer.alloc(MAC_LEN);

  constructor(ourPublicKey: PublicKey, private readonly random: (n: number) => Buffer) {
    this.mac1Key = hash(LABEL_MAC1_BYTES, ourPublicKey.bytes);
    this.cookieKey = hash(LABEL_COOKIE_BYTES, ourPublicKey.bytes);
  }

  /** mac1 = MAC(HASH(LABEL_MAC1 ‖ S_pub_receiver), msg_α): proves the sender knows our public key. */
  checkMac1(msg: Buffer): boolean {
    const off = mac1Offset(msg);
    mac(this.mac1Key, msg.subarray(0, off), this.scratch);
    return constantTimeEqual(this.scratch, msg.subarray(off, off + MAC_LEN));
  }

  /** mac2 = MAC(cookie, msg_β) where cookie = MAC(R_m, A_m'): proves the sender owns its source address. */
  checkMac2(msg: Buffer, from: Endpoint, now: number): boolean {
    const cookie = this.cookieFor(from, now);
    const off = mac2Offset(msg);
    mac(cookie, msg.subarray(0, off), this.scratch);
    return constantTimeEqual(this.scratch, msg.subarray(off, off + MAC_LEN));
  }

  /** A type-3 reply to `msg` (whose sender index is at `senderIndexOffset`), encrypting the cookie for `from`. */
  createReply(msg: Buffer, senderIndexOffset: number, from: Endpoint, now: number): Buffer {
    const reply = Buffer.alloc(MESSAGE_COOKIE_REPLY_SIZE);
    reply.writeUInt32LE(MESSAGE_COOKIE_REPLY, 0);
    reply.writeUInt32LE(msg.readUInt32LE(senderIndexOffset), COOKIE_RECEIVER);
    const nonce = this.random(COOKIE_NONCE_LEN);
    nonce.copy(reply, COOKIE_NONCE);
    const off = mac1Offset(msg);
    // The mac1 of the message is the AD: only its real sender can use the reply.
    const sealed = xaeadSeal(this.cookieKey, nonce, this.cookieFor(from, now), msg.subarray(off, off + MAC_LEN));
    sealed.copy(reply, COOKIE_ENCRYPTED);
    return reply;
  }

  private cookieFor(from: Endpoint, now: number): Buffer {
    if (now - this.secretSetAt >= COOKIE_REFRESH_TIME) {
      this.random(KEY_LEN).copy(this.secret);
      this.secretSetAt = now;
    }
    return mac(this.secret, endpointBytes(from));
  }
}

/**
 * The sending side, one per peer, keyed by the peer's static public key: adds
 * mac1 to our handshake messages and mac2 while a cookie from that peer is fresh.
 */
export class CookieGenerator {
  // mac1 key, cookie key, cookie, last mac1: one allocation per peer, and
  // views of it made per handshake message rather than kept (a view costs
  // about 100 bytes of heap for as long as the peer lives).
  private readonly slab = Buffer.alloc(2 * KEY_LEN + COOKIE_LEN + MAC_LEN);
  private cookieSetAt = -Infinity;
  private hasLastMac1 = false;

  constructor(peerPublicKey: PublicKey) {
    hash(LABEL_MAC1_BYTES, peerPublicKey.bytes).copy(this.mac1Key);
    hash(LABEL_COOKIE_BYTES, peerPublicKey.bytes).copy(this.cookieKey);
  }

  private get mac1Key(): Buffer {
    return this.slab.subarray(0, KEY_LEN);
  }

  private get cookieKey(): Buffer {
    return this.slab.subarray(KEY_LEN, 2 * KEY_LEN);
  }

  private get cookie(): Buffer {
    return this.slab.subarray(2 * KEY_LEN, 2 * KEY_LEN + COOKIE_LEN);
  }

  private get lastMac1(): Buffer {
    return this.slab.subarray(2 * KEY_LEN + COOKIE_LEN);
  }

  /** Fills mac1 and mac2 of an outgoing initiation or response in place. */
  addMacs(msg: Buffer, now: number): void {
    const off1 = mac1Offset(msg);
    const off2 = mac2Offset(msg);
    const lastMac1 = this.lastMac1;
    mac(this.mac1Key, msg.subarray(0, off1), lastMac1);
    lastMac1.copy(msg, off1);
    this.hasLastMac1 = true;
    // §5.4.7: mac2 only while the cookie is younger than COOKIE_REFRESH_TIME.
    if (now - this.cookieSetAt < COOKIE_REFRESH_TIME) {
      mac(this.cookie, msg.subarray(0, off2)).copy(msg, off2);
    } else {
      msg.fill(0, off2, off2 + MAC_LEN);
    }
  }

  /** Stores the cookie of a type-3 reply; false when it does not answer our last message. */
  consumeReply(reply: Buffer, now: number): boolean {
    if (!this.hasLastMac1) return false;
    const nonce = reply.subarray(COOKIE_NONCE, COOKIE_NONCE + COOKIE_NONCE_LEN);
    const sealed = reply.subarray(COOKIE_ENCRYPTED, COOKIE_ENCRYPTED + COOKIE_ENCRYPTED_LEN);
    const cookie = xaeadOpen(this.cookieKey, nonce, sealed, this.lastMac1);
    if (!cookie) return false;
    cookie.copy(this.cookie);
    this.cookieSetAt = now;
    this.hasLastMac1 = false; // one cookie per message sent
    return true;
  }

  hasFreshCookie(now: number): boolean {
    return now - this.cookieSetAt < COOKIE_REFRESH_TIME;
  }

  /** Zeroes the cookie and the last mac1 (the generator is dropped). */
  wipe(): void {
    wipe(this.slab);
    this.hasLastMac1 = false;
    this.cookieSetAt = -Infinity;
  }
}
