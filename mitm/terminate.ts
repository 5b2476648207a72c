// The client side of an inspected flow: refuse with a TLS alert, or finish
// the client's handshake as the server with a minted leaf.

import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { MintedLeaf } from './mint';
import { ClientHandshakeEnd, rejectionAlertOf } from './pinning';

// RFC 8446 §5.1 / §6: an alert record is ContentType alert(21), legacy
// record version 0x0303, length 2, then AlertLevel and AlertDescription.
const CONTENT_TYPE_ALERT = 21;
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

export function alertRecord(description: number): Buffer {
  const b = Buffer.alloc(7);
  b[0] = CONTENT_TYPE_ALERT;
  b.writeUInt16BE(LEGACY_RECORD_VERSION, 1);
  b.writeUInt16BE(2, 3);
  b[5] = ALERT_LEVEL_FATAL;
  b[6] = description;
  return b;
}

/** How long a refused client gets to read the refusal before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1_000;

/** Writes a fatal alert in cleartext (no ServerHello was sent) and closes. */
export function refuseWithAlert(client: Duplex, description: number): void {
  refuseWith(client, alertRecord(description));
}

/** Sends `last` (an alert, an HTTP 403) and closes; the client's remaining bytes are read and dropped. */
export function refuseWith(client: Duplex, last: Buffer): void {
  if (client.destroyed) return;
  const timer = setTimeout(() => client.destroy(), REFUSAL_LINGER_MS);
  timer.unref();
  client.once('close', () => clearTimeout(timer));
  client.end(last);
  // Drained so that end() can complete.
  client.resume();
}

/** One SecureContext per minted leaf: LeafMinter returns the same object from its cache. */
const contexts = new WeakMap<MintedLeaf, tls.SecureContext>();

export function secureContextFor(leaf: MintedLeaf): tls.SecureContext {
  let ctx = contexts.get(leaf);
  if (!ctx) {
    ctx = tls.createSecureContext({ key: leaf.key.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: leaf.chainPem, minVersion: 'TLSv1.2' });
    contexts.set(leaf, ctx);
  }
  return ctx;
}

export type TerminateResult =
  | { ok: true; socket: tls.TLSSocket; handshakeAt: number }
  | { ok: false; end: ClientHandshakeEnd };

/**
 * Completes the client's handshake as its server. The bytes already read
 * (the ClientHello and anything after it) are unshifted into `client` first:
 * TLSSocket feeds a stream's buffered bytes to the TLS engine before reading
 * more, for net.Socket and for any other Duplex alike.
 */
export function terminateClientTls(client: Duplex, replay: Buffer, leaf: MintedLeaf, alpn: string | null, timeoutMs: number, now: () => number): Promise<TerminateResult> {
  return new Promise((resolve) => {
    if (client.readableEnded || client.destroyed) {
      resolve({ ok: false, end: { kind: 'other', detail: 'client closed before the TLS handshake could start' } });
      return;
    }
    client.unshift(replay);
    const socket = new tls.TLSSocket(client, {
      isServer: true,
      secureContext: secureContextFor(leaf),
      ALPNProtocols: alpn ? [alpn] : undefined,
    });
    let settled = false;
    const settle = (r: TerminateResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('close', onClose);
      socket.off('end', onClose);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onClose = (): void => settle({ ok: false, end: { kind: 'closed_before_finished' } });
    const timer = setTimeout(() => settle({ ok: false, end: { kind: 'other', detail: `client did not finish the TLS handshake within ${timeoutMs} ms` } }), timeoutMs);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const alert = rejectionAlertOf(err.code);
      settle({ ok: false, end: alert !== null ? { kind: 'alert', alert } : classifyError(err) });
    });
    socket.once('close', onClose);
    // With allowHalfOpen a FIN mid-handshake ends reading without closing: it is the same refusal.
    socket.once('end', onClose);
    socket.once('secure', () => settle({ ok: true, socket, handshakeAt: now() }));
  });
}

function classifyError(err: NodeJS.ErrnoException): ClientHandshakeEnd {
  // A reset in the middle of our handshake is the same signal as a close.
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return { kind: 'closed_before_finished' };
  return { kind: 'other', detail: err.code ?? err.message };
}
