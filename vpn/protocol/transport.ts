// Type-4 transport data messages (whitepaper §5.4.6). This is the hot path:
// a message is numbered into a reused record and sealed where it is written
// (the batched UDP addon; `seal()` below for everything else), and opened
// into the device's packet arena.
import {
  AEAD_TAG_LEN, MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, PADDING_MULTIPLE,
} from './constants';
import { PacketArena } from '../../netstack/wire';
import { Keypair } from './keypair';
import { sodium } from './sodium';

export const TRANSPORT_RECEIVER = 4;
export const TRANSPORT_COUNTER = 8;
export const TRANSPORT_CONTENT = MESSAGE_TRANSPORT_HEADER_SIZE;

// ChaCha20-Poly1305 IETF nonce: 32 zero bits ‖ 64-bit little-endian counter.
// Shared scratch: sealing/opening is synchronous and never interleaved.
const nonce = Buffer.alloc(12);
// Sealed messages are carved from slabs (see PacketArena): Buffer.allocUnsafe
// makes a new 8 KiB pool every five messages (createPool was 2% of a
// download's profile). The edge copies what it sends, so a slab is only kept
// alive by messages someone still holds; every byte is written below.
const sealed = new PacketArena();
const EMPTY = Buffer.alloc(0);

/**
 * A transport message the device has numbered (keypair, counter) but not yet
 * sealed. Sealing is a pure function of these fields, so it runs where the
 * message is written: the batched edge seals into its send queue (one copy,
 * no sealed Buffer in JavaScript), anything else calls `seal()`. This is
 * wireguard-go's split: its send path numbers an element, its encryption
 * workers seal it. Valid until the device's next call (DeviceOutput reuses it).
 */
export class OutboundTransport {
  packet: Uint8Array = EMPTY;
  key: Buffer = EMPTY;
  receiverIndex = 0;
  counterLo = 0;
  counterHi = 0;

  /** Bytes of the sealed message: header, packet padded to 16, tag. */
  get sealedLength(): number {
    return TRANSPORT_CONTENT + paddedLength(this.packet.length) + AEAD_TAG_LEN;
  }

  /** Drops the references to the packet and the key (a reused record keeps neither alive). */
  release(): void {
    this.packet = EMPTY;
    this.key = EMPTY;
  }

  /** The sealed message, through sodium-native, in a buffer of its own. */
  seal(): Buffer {
    const packet = this.packet;
    const len = packet.length;
    const padded = paddedLength(len);
    const out = sealed.take(TRANSPORT_CONTENT + padded + AEAD_TAG_LEN);
    out.writeUInt32LE(MESSAGE_TRANSPORT, 0);
    out.writeUInt32LE(this.receiverIndex, TRANSPORT_RECEIVER);
    out.writeUInt32LE(this.counterLo, TRANSPORT_COUNTER);
    out.writeUInt32LE(this.counterHi, TRANSPORT_COUNTER + 4);
    out.set(packet, TRANSPORT_CONTENT);
    if (padded !== len) out.fill(0, TRANSPORT_CONTENT + len, TRANSPORT_CONTENT + padded);
    nonce.writeUInt32LE(this.counterLo, 4);
    nonce.writeUInt32LE(this.counterHi, 8);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.subarray(TRANSPORT_CONTENT),
      out.subarray(TRANSPORT_CONTENT, TRANSPORT_CONTENT + padded),
      null, null, nonce, this.key,
    );
    return out;
  }
}

/**
 * Numbers `packet` as the keypair's next transport message (into `t`), then
 * advances the counter. The caller has checked that the keypair may still send.
 */
export function numberTransport(keypair: Keypair, packet: Uint8Array, t: OutboundTransport): OutboundTransport {
  t.packet = packet;
  t.key = keypair.sendKey;
  t.receiverIndex = keypair.remoteIndex;
  t.counterLo = keypair.sendCounterLo;
  t.counterHi = keypair.sendCounterHi;
  keypair.advanceSendCounter();
  return t;
}

/** Numbers and seals in one step: the message for `packet` (§5.4.6, zero-padded to a multiple of 16). */
export function sealTransport(keypair: Keypair, packet: Uint8Array): Buffer {
  return numberTransport(keypair, packet, new OutboundTransport()).seal();
}

function paddedLength(len: number): number {
  return (len + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
}

/**
 * Decrypts a transport message into a buffer of `arena` (the device's, which
 * its owner may recycle), or a fresh one; null when authentication fails.
 */
export function openTransport(keypair: Keypair, msg: Buffer, arena?: PacketArena): Buffer | null {
  const len = msg.length - TRANSPORT_CONTENT - AEAD_TAG_LEN;
  const out = arena ? arena.take(len) : Buffer.allocUnsafe(len);
  msg.copy(nonce, 4, TRANSPORT_COUNTER, TRANSPORT_COUNTER + 8);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, msg.subarray(TRANSPORT_CONTENT), null, nonce, keypair.recvKey);
  } catch {
    return null; // failed tag check (sodium-native throws); only forged or corrupted packets get here
  }
  return out;
}

/**
 * Length of the IP packet at the start of a decrypted payload (which carries
 * padding), from the IPv4 total length or IPv6 payload length; -1 when the
 * header is invalid or claims more than was received.
 */
export function innerPacketLength(plain: Buffer): number {
  if (plain.length === 0) return -1;
  const version = plain[0] >>> 4;
  let len: number;
  if (version === 4) {
    if (plain.length < 20) return -1;
    len = plain.readUInt16BE(2);
    if (len < 20) return -1;
  } else if (version === 6) {
    if (plain.length < 40) return -1;
    len = 40 + plain.readUInt16BE(4);
  } else {
    return -1;
  }
  return len <= plain.length ? len : -1;
}
