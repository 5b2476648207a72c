// Dials the origin for an inspected flow, then secures and validates the
// connection with secureUpstream: one TLS and validation path whether the TCP
// connection was opened here or by the stack. Unlike secureUpstream, nothing
// refused is handed back open: a failure always closes the connection.
//
// The TCP connect itself goes through a Dialer: the concentrator passes the
// same one its flows use (netstack's connectUpstream), so a connection opened
// here on a client's behalf obeys every rule a client's own flow does.

import net from 'node:net';
import { SecureUpstreamOptions, UpstreamConnection, UpstreamFailure, secureUpstream, upstreamLabel } from './secure';

/** Opens a TCP connection; resolves once connected, rejects with an Error saying why not. */
export type Dialer = (host: string, port: number, timeoutMs: number) => Promise<net.Socket>;

export interface ConnectUpstreamOptions extends SecureUpstreamOptions {
  port: number;
  /** Deadline for TCP connect plus TLS handshake and validation. */
  timeoutMs: number;
  /** Default: a plain net.connect. */
  dial?: Dialer;
}

export async function connectUpstream(opts: ConnectUpstreamOptions): Promise<UpstreamConnection | UpstreamFailure> {
  const startedAt = Date.now();
  const raw = await dialWithin(opts);
  if (!(raw instanceof net.Socket)) return raw;
  // The rest of the one deadline; at least 1 ms so that a slow connect still gets its verdict from the timer.
  const remainingMs = Math.max(1, opts.timeoutMs - (Date.now() - startedAt));
  const result = await secureUpstream(raw, { ...opts, timeoutMs: remainingMs });
  if (result.ok) return result;
  result.socket?.destroy();
  raw.destroy();
  return { ok: false, error: result.error, detail: result.detail, chain: result.chain, code: result.code };
}

/** A plain TCP connect. */
export const netDialer: Dialer = (host, port, timeoutMs) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(err.code ?? err.message));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });

/** The dialer's socket, or the failure; our own deadline bounds a dialer that never settles. */
export function dialWithin(opts: Pick<ConnectUpstreamOptions, 'host' | 'port' | 'timeoutMs' | 'dial'>): Promise<net.Socket | UpstreamFailure> {
  const where = upstreamLabel({ host: opts.host, port: opts.port });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: net.Socket | UpstreamFailure): void => {
      if (settled) {
        if (result instanceof net.Socket) result.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      settle({ ok: false, error: 'timeout', detail: `TCP connect to ${where} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    let dialing: Promise<net.Socket>;
    try {
      dialing = (opts.dial ?? netDialer)(opts.host, opts.port, opts.timeoutMs);
    } catch (err) {
      dialing = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    dialing.then(settle, (err: unknown) => {
      settle({ ok: false, error: 'connect_failed', detail: `cannot connect to ${where}: ${err instanceof Error ? err.message : String(err)}` });
    });
  });
}
