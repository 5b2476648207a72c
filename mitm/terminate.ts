// The client side of an inspected flow, at the edge: refuse with a last
// record (a TLS alert, an HTTP 403), or finish the client's handshake as the
// server with a minted leaf (node:tls). The engine's core decides which;
// its stream adapter calls these.

import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { REFUSAL_LINGER_MS, alertRecord } from './alerts';
import { ClientHandshakeEnd, rejectionAlertOf } from './pinning';
import { TLS_HIGH_WATER_MARK } from './tls_record';

export { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, alertRecord } from './alerts';

/** Writes a fatal alert in cleartext (no ServerHello was sent) and closes. */
export function refuseWithAlert(client: Duplex, description: number): void {
  refuseWith(client, alertRecord(description));
}

/** Sends `last` (an alert, an HTTP 403) and closes; the client's remaining bytes are read and dropped. */
export function refuseWith(client: Duplex, last: Buffer, lingerMs = REFUSAL_LINGER_MS): void {
  if (client.destroyed) return;
  const timer = setTimeout(() => client.destroy(), lingerMs);
  timer.unref();
  client.once('close', () => clearTimeout(timer));
  client.end(last);
  // Drained so that end() can complete.
  client.resume();
}

export type ClientTlsEnd = { ok: true } | { ok: false; end: ClientHandshakeEnd };

/**
 * Starts the client's handshake with us as its server, under `context` (the
 * minted leaf's, leaf_contexts.ts); `done` is called
 * once, when it completes or fails (the socket is then destroyed). The bytes
 * already read (the ClientHello and anything after it) are unshifted into
 * `client` first: TLSSocket feeds a stream's buffered bytes to the TLS
 * engine before reading more, for net.Socket and for any other Duplex alike.
 * The deadline is the caller's. Returns null when the client is already gone
 * (`done` has then been told).
 */
export function startClientTls(client: Duplex, replay: Buffer, context: tls.SecureContext, alpn: string | null, done: (r: ClientTlsEnd) => void): tls.TLSSocket | null {
  if (client.readableEnded || client.destroyed) {
    done({ ok: false, end: { kind: 'other', detail: 'client closed before the TLS handshake could start' } });
    return null;
  }
  client.unshift(replay);
  // highWaterMark is passed on to the stream by node's TLSSocket, but missing from its typings.
  const options: tls.TLSSocketOptions & { highWaterMark: number } = {
    isServer: true,
    secureContext: context,
    ALPNProtocols: alpn ? [alpn] : undefined,
    highWaterMark: TLS_HIGH_WATER_MARK,
  };
  const socket = new tls.TLSSocket(client, options);
  let settled = false;
  const settle = (r: ClientTlsEnd): void => {
    if (settled) return;
    settled = true;
    socket.off('close', onClose);
    socket.off('end', onClose);
    if (!r.ok) socket.destroy();
    done(r);
  };
  const onClose = (): void => settle({ ok: false, end: { kind: 'closed_before_finished' } });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    const alert = rejectionAlertOf(err.code);
    settle({ ok: false, end: alert !== null ? { kind: 'alert', alert } : classifyError(err) });
  });
  socket.once('close', onClose);
  // With allowHalfOpen a FIN mid-handshake ends reading without closing: it is the same refusal.
  socket.once('end', onClose);
  socket.once('secure', () => settle({ ok: true }));
  return socket;
}

function classifyError(err: NodeJS.ErrnoException): ClientHandshakeEnd {
  // A reset in the middle of our handshake is the same signal as a close.
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return { kind: 'closed_before_finished' };
  return { kind: 'other', detail: err.code ?? err.message };
}
