// Dials the origin for an inspected flow, then secures and validates the
// connection with secureUpstream: one TLS and validation path whether the TCP
// connection was opened here or by the stack. Unlike secureUpstream, nothing
// refused is handed back open: a failure always closes the connection.

import net from 'node:net';
import { SecureUpstreamOptions, UpstreamConnection, UpstreamFailure, secureUpstream, upstreamLabel } from './secure';

export interface ConnectUpstreamOptions extends SecureUpstreamOptions {
  port: number;
  /** Deadline for TCP connect plus TLS handshake and validation. */
  timeoutMs: number;
}

export async function connectUpstream(opts: ConnectUpstreamOptions): Promise<UpstreamConnection | UpstreamFailure> {
  const startedAt = Date.now();
  const raw = await dial(opts);
  if (!(raw instanceof net.Socket)) return raw;
  // The rest of the one deadline; at least 1 ms so that a slow connect still gets its verdict from the timer.
  const remainingMs = Math.max(1, opts.timeoutMs - (Date.now() - startedAt));
  const result = await secureUpstream(raw, { ...opts, timeoutMs: remainingMs });
  if (result.ok) return result;
  result.socket?.destroy();
  raw.destroy();
  return { ok: false, error: result.error, detail: result.detail, chain: result.chain };
}

function dial(opts: ConnectUpstreamOptions): Promise<net.Socket | UpstreamFailure> {
  return new Promise((resolve) => {
    const where = upstreamLabel({ host: opts.host, port: opts.port });
    const socket = net.connect({ host: opts.host, port: opts.port });
    const settle = (result: net.Socket | UpstreamFailure): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      if (result !== socket) socket.destroy();
      resolve(result);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      settle({ ok: false, error: 'connect_failed', detail: `cannot connect to ${where}: ${err.code ?? err.message}` });
    };
    const timer = setTimeout(() => {
      settle({ ok: false, error: 'timeout', detail: `TCP connect to ${where} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => settle(socket));
  });
}
