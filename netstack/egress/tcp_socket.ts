// Socket egress for TCP: each terminated flow is re-originated from an OS
// socket. The client's SYN is answered only once this connect succeeded
// (DESIGN.md, lessons from the field): a refused upstream becomes an RST to
// the client, an unreachable one an ICMP unreachable or a timeout.
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { processFds } from './fd_budget';
import { relay } from './relay';
import { SharedBufferReads } from './shared_reads';

export type TcpOpenFailure = 'refused' | 'unreachable_host' | 'unreachable_net' | 'timeout' | 'blocked' | 'fd_limit';

export class TcpOpenError extends Error {
  constructor(readonly failure: TcpOpenFailure, detail: string) {
    super(`${failure}: ${detail}`);
  }
}

/** The upstream side of a flow, ready: `attach` wires the client's stream to it. */
export interface TcpUpstream {
  attach(client: Duplex): void;
  /** The client went away before attach: release the upstream. */
  abort(): void;
}

/** The default handler: re-originate the flow from an OS socket, read into the shared buffer. */
export function socketEgress(host: string, port: number, timeoutMs: number): Promise<TcpUpstream> {
  const serverReads = new SharedBufferReads();
  return connectUpstream(host, port, timeoutMs, serverReads).then((sock) => ({
    attach: (client: Duplex) => relay(client, sock, { serverReads }),
    abort: () => sock.resetAndDestroy(),
  }));
}

export function classifyConnectError(err: NodeJS.ErrnoException): TcpOpenFailure {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENETUNREACH':
      return 'unreachable_net';
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'EADDRNOTAVAIL':
      return 'unreachable_host';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EMFILE':
    case 'ENFILE':
      return 'fd_limit';
    default:
      return 'unreachable_host';
  }
}

/**
 * Opens the upstream TCP socket; resolves once connected. With `reads`, the
 * socket reads into their shared buffer and emits no 'data'.
 */
export function connectUpstream(host: string, port: number, timeoutMs: number, reads?: SharedBufferReads): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, allowHalfOpen: true, noDelay: true, ...(reads && { onread: reads.onread }) });
    processFds.opened();
    sock.once('close', () => processFds.closed());
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TcpOpenError('timeout', `no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      // Until the consumer adds its own: an error (a reset) before it attached must not reach the process.
      sock.on('error', () => undefined);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new TcpOpenError(classifyConnectError(err), `${host}:${port}: ${err.code ?? err.message}`));
    });
  });
}
