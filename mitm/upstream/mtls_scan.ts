// Does this server demand a client certificate, and does its own chain hold
// for the name? Asked when a handshake ended in handshake_failure, which is
// what a TLS 1.2 server that requires a client certificate sends (alongside
// other causes). A second connection, capped at TLS 1.2, has its server
// bytes read as they pass (server_flight.ts): the CertificateRequest and the
// Certificate travel in clear there. Only this rare diagnostic goes through a
// JavaScript stream; the flows themselves keep node's native socket path.

import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { dialWithin, type DialTlsOptions } from './connect';
import { validatePresented, type PresentedVerdict } from './secure';
import { ServerFlightScanner, type ServerFlight } from './server_flight';

/**
 * null when the server did not ask for a client certificate (or could not be
 * reached); otherwise the verdict on the chain it presented, by the rules of
 * inspection (secure.ts validatePresented).
 */
export async function probeClientCertificateDemand(opts: DialTlsOptions): Promise<PresentedVerdict | null> {
  const flight = await scanTls12(opts);
  if (flight === null || !flight.certificateRequested || flight.chain.length === 0) return null;
  return validatePresented(flight.chain, null, 'TLSv1.2', opts);
}

/** A TLS 1.2 handshake with the server, watching its first flight; null when no connection could be made. */
async function scanTls12(opts: DialTlsOptions): Promise<ServerFlight | null> {
  const raw = await dialWithin(opts);
  if (!(raw instanceof Duplex)) return null;
  const scanner = new ServerFlightScanner();
  const wire = new Duplex({
    read: () => void raw.resume(),
    write: (chunk: Buffer, _enc, cb) => void raw.write(chunk, cb),
    destroy: (err, cb) => {
      raw.destroy();
      cb(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    scanner.push(chunk);
    if (!wire.push(chunk)) raw.pause();
  });
  raw.on('end', () => wire.push(null));
  raw.on('error', () => wire.destroy());
  return new Promise((resolve) => {
    const socket = tls.connect({
      socket: wire,
      servername: opts.servername && net.isIP(opts.servername) === 0 ? opts.servername : undefined,
      ALPNProtocols: opts.alpn.length > 0 ? opts.alpn : undefined,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      resolve(scanner.flight);
    };
    const timer = setTimeout(done, opts.timeoutMs);
    // Whatever ends the handshake (the server's alert, a close, or success), the clear part has been seen.
    socket.once('error', done);
    socket.once('close', done);
    socket.once('secureConnect', done);
  });
}
