// The TLS alerts the concentrator sends a client it refuses, in clear before
// any ServerHello (RFC 8446 §5.1 / §6).

import { CONTENT_TYPE_ALERT } from './tls_record';

// An alert record is ContentType alert, legacy record version 0x0303,
// length 2, then AlertLevel and AlertDescription.
const LEGACY_RECORD_VERSION = 0x0303;
const ALERT_LEVEL_FATAL = 2;
/**
 * Sent when the upstream certificate failed validation. Not unknown_ca (48)
 * or bad_certificate (42): those say the *client's* peer certificate is bad,
 * and the client never saw one. handshake_failure is the generic "cannot
 * establish acceptable security parameters" every client reports plainly.
 */
export const ALERT_HANDSHAKE_FAILURE = 40;
/** Sent when policy blocks the destination (RFC 8446 §6.2: access control refused to proceed). */
export const ALERT_ACCESS_DENIED = 49;
/** Sent when the upstream cannot be reached or fails in TLS itself. */
export const ALERT_INTERNAL_ERROR = 80;

/** How long a refused client gets to read the refusal before its stream is destroyed. */
export const REFUSAL_LINGER_MS = 1_000;

/** A fatal alert record with `description`. */
export function alertRecord(description: number): Buffer {
  const b = Buffer.alloc(7);
  b[0] = CONTENT_TYPE_ALERT;
  b.writeUInt16BE(LEGACY_RECORD_VERSION, 1);
  b.writeUInt16BE(2, 3);
  b[5] = ALERT_LEVEL_FATAL;
  b[6] = description;
  return b;
}
