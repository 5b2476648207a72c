// A TLS connection the concentrator opens on its own account (the bypass
// gate's probe, the TLS 1.2 client-certificate scan): dialed with the
// concentrator's one dialer (netstack's connectUpstream, or the one the
// wiring passes), then secured and validated with secureUpstream, the same
// TLS and validation path as a flow's. Unlike secureUpstream, nothing
// refused is handed back open: a failure always closes the connection.

import { Duplex } from 'node:stream';
import { connectUpstream } from '../../netstack';
import { SecureUpstreamOptions, UpstreamConnection, UpstreamFailure, secureUpstream, upstreamLabel } from './secure';

/** Opens a TCP connection; resolves once connected, rejects with an Error saying why not (netstack's connectUpstream). */
export type Dialer = (host: string, port: number, timeoutMs: number) => Promise<Duplex>;

export interface DialTlsOptions extends SecureUpstreamOptions {
  port: number;
  /** Deadline for TCP connect plus TLS handshake and validation. */
  timeoutMs: number;
  /** The dialer the flows use, so a connection opened on a client's behalf obeys every rule its own flow does. Default: netstack's. */
  dial?: Dialer;
}

export async function dialTls(opts: DialTlsOptions): Promise<UpstreamConnection | UpstreamFailure> {
  const startedAt = opts.now().getTime();
  const raw = await dialWithin(opts);
  if (!(raw instanceof Duplex)) return raw;
  // The rest of the one deadline; at least 1 ms so that a slow connect still gets its verdict from the timer.
  const remainingMs = Math.max(1, opts.timeoutMs - (opts.now().getTime() - startedAt));
  const result = await secureUpstream(raw, { ...opts, timeoutMs: remainingMs });
  if (result.ok) return result;
  result.socket?.destroy();
  raw.destroy();
  return { ok: false, error: result.error, detail: result.detail, chain: result.chain, code: result.code };
}

/** The dialer's socket, or the failure; our own deadline bounds a dialer that never settles. */
export function dialWithin(opts: Pick<DialTlsOptions, 'host' | 'port' | 'timeoutMs' | 'dial'>): Promise<Duplex | UpstreamFailure> {
  const where = upstreamLabel({ host: opts.host, port: opts.port });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: Duplex | UpstreamFailure): void => {
      if (settled) {
        if (result instanceof Duplex) result.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      settle({ ok: false, error: 'timeout', detail: `TCP connect to ${where} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    let dialing: Promise<Duplex>;
    try {
      dialing = (opts.dial ?? connectUpstream)(opts.host, opts.port, opts.timeoutMs);
    } catch (err) {
      dialing = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    dialing.then(settle, (err: unknown) => {
      settle({ ok: false, error: 'connect_failed', detail: `cannot connect to ${where}: ${err instanceof Error ? err.message : String(err)}` });
    });
  });
}
