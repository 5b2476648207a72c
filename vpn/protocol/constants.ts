// WireGuard protocol constants, named as in the whitepaper §6.1 and
// wireguard-go's constants.go. Times are milliseconds (the core's clock unit).

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

// Message counters are 64-bit; JS numbers are exact only below 2^53, so the
// limits are kept as bigint for the record and as (hi, lo) 32-bit halves for
// the packet path (see keypair.ts / replay.ts).
export const REKEY_AFTER_MESSAGES = 2n ** 60n;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const REKEY_AFTER_MESSAGES_HI = Number(REKEY_AFTER_MESSAGES >> 32n); // lo part is 0
export const REJECT_AFTER_MESSAGES_HI = Number(REJECT_AFTER_MESSAGES >> 32n);
export const REJECT_AFTER_MESSAGES_LO = Number(REJECT_AFTER_MESSAGES & 0xffffffffn);

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** wireguard-go: at most one initiation consumed per peer per 50 ms (flood guard). */
export const HANDSHAKE_INITIATION_RATE = 50;
/** Retransmission jitter added to REKEY_TIMEOUT, as in wireguard-go (§6.4 "jitter"). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** REKEY_ATTEMPT_TIME / REKEY_TIMEOUT initiations before giving up. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Key material is erased after this long without a new handshake (§6.3). */
export const ZERO_KEY_MATERIAL_AFTER = 3 * REJECT_AFTER_TIME;

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const KEY_LEN = 32;
export const HASH_LEN = 32;
export const MAC_LEN = 16;
export const AEAD_TAG_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const COOKIE_LEN = 16;
export const COOKIE_NONCE_LEN = 24;

export const MESSAGE_INITIATION_SIZE = 148; // 4 + 4 + 32 + (32+16) + (12+16) + 16 + 16
export const MESSAGE_RESPONSE_SIZE = 92; // 4 + 4 + 4 + 32 + (0+16) + 16 + 16
export const MESSAGE_COOKIE_REPLY_SIZE = 64; // 4 + 4 + 24 + (16+16)
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16; // type+reserved, receiver, counter
export const MESSAGE_TRANSPORT_MIN_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_LEN;
/** §5.4.6: plaintext is zero-padded to a multiple of 16 bytes. */
export const PADDING_MULTIPLE = 16;

/** Packets held per peer while waiting for a session (wireguard-go QueueStagedSize). */
export const MAX_STAGED_PACKETS = 128;
/** Default for WgDevice "under load" (handshake messages per second). */
export const DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD = 1000;
/** After load is detected the device stays in cookie mode this long (wireguard-go). */
export const UNDER_LOAD_AFTER_TIME = 1_000;
