// The one byte relay between the client side and the server side of a flow:
// socket egress, flows forwarded after their name was read, and the TLS
// engine's decrypted (inspected) and raw (bypassed, non-TLS) streams.
// pipe() gives backpressure both ways; each direction's FIN is passed on as
// a half-close (a request body ended with shutdown(SHUT_WR) still gets its
// response); an error or reset on either side ends both, and a side that is
// a TCP socket is then reset (RST), so the far end learns of the reset
// rather than seeing a clean close.

import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ownCopy } from '../wire/bytes';
import { takesTransient, type SharedBufferReads } from './shared_reads';

/** Observer of the plaintext; it can neither stall nor break the relay. */
export interface RelayTap {
  clientToServer(chunk: Buffer): void;
  serverToClient(chunk: Buffer): void;
  end(): void;
}

export type RelayEnd = 'closed' | 'client_error' | 'server_error' | 'client_reset' | 'server_reset';

export interface RelayResult {
  end: RelayEnd;
  detail?: string;
  /** Application bytes read from the client and from the server. */
  fromClient: number;
  fromServer: number;
  /** Which side ended, failed or closed first; null when neither did (never in onEnd). */
  firstEnd: 'client' | 'server' | null;
}

export interface RelayOptions {
  tap?: RelayTap;
  /** Called once per tap failure; the tap is detached after its first throw. */
  onTapError?: (err: unknown) => void;
  /** Called the first time the client sends application data. */
  onClientData?: () => void;
  /** Once both sides closed. */
  onEnd?(result: RelayResult): void;
  /**
   * The server is a socket opened with these reads (net's `onread`): its
   * bytes come through them, not as 'data' events, and the client stream
   * is given chunks it must copy (writeTransient) where it can take them.
   */
  serverReads?: SharedBufferReads;
}

export function relay(client: Duplex, server: Duplex, opts: RelayOptions): void {
  let fromClient = 0;
  let fromServer = 0;
  let tap = opts.tap;
  let firstClientData = opts.onClientData;
  let end: RelayEnd | null = null;
  let detail: string | undefined;
  let closed = 0;
  let firstEnd: 'client' | 'server' | null = null;
  const ended = (side: 'client' | 'server') => (): void => {
    firstEnd ??= side;
  };

  const tapCall = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      tap = undefined;
      opts.onTapError?.(err);
    }
  };
  for (const ev of ['end', 'error', 'close']) {
    client.once(ev, ended('client'));
    server.once(ev, ended('server'));
  }
  const fail = (why: RelayEnd, err?: Error): void => {
    if (end === null) {
      end = why;
      detail = err ? ((err as NodeJS.ErrnoException).code ?? err.message) : undefined;
    }
    abort(client);
    abort(server);
  };
  const onClose = (side: Duplex, reset: RelayEnd): void => {
    // A side that closes without having both ended its reading and finished its writing was reset.
    if (!side.readableEnded || !side.writableFinished) fail(reset);
    if (++closed < 2) return;
    const t = tap;
    if (t) tapCall(() => t.end());
    opts.onEnd?.({ end: end ?? 'closed', detail, fromClient, fromServer, firstEnd });
  };

  client.on('data', (chunk: Buffer) => {
    fromClient += chunk.length;
    if (firstClientData) {
      const f = firstClientData;
      firstClientData = undefined;
      f();
    }
    const t = tap;
    if (t) tapCall(() => t.clientToServer(chunk));
  });
  /** A transient chunk is reused once this returns: the tap is given a copy. */
  const fromServerChunk = (chunk: Buffer, transient = false): void => {
    fromServer += chunk.length;
    const t = tap;
    if (t) tapCall(() => t.serverToClient(transient ? ownCopy(chunk) : chunk));
  };
  client.on('error', (err: Error) => fail('client_error', err));
  server.on('error', (err: Error) => fail('server_error', err));
  for (const [side, reset] of [[client, 'client_reset'], [server, 'server_reset']] as const) {
    // A side already gone never emits 'close' again.
    if (side.closed) queueMicrotask(() => onClose(side, reset));
    else side.once('close', () => onClose(side, reset));
  }
  client.pipe(server);
  if (opts.serverReads) forwardReads(opts.serverReads, server, client, fromServerChunk);
  else {
    server.on('data', fromServerChunk);
    server.pipe(client);
  }
}

/**
 * What pipe() does, for a server read into a shared buffer: each chunk is
 * written on (copied by the destination, or here when it cannot take a
 * transient chunk), reads stop while the destination is full and resume on
 * its 'drain', and the server's end ends the destination's writing.
 */
function forwardReads(reads: SharedBufferReads, server: Duplex, client: Duplex, seen: (chunk: Buffer, transient: boolean) => void): void {
  const resume = (): void => {
    server.resume();
  };
  const onRead = (chunk: Buffer): boolean => {
    seen(chunk, true);
    if (client.destroyed || client.writableEnded) return false;
    if (takesTransient(client) ? client.writeTransient(chunk) : client.write(ownCopy(chunk))) return true;
    client.once('drain', resume);
    return false;
  };
  // Bytes read before the relay was attached: the reads stopped at the first of them.
  let flowing = true;
  for (const chunk of reads.attach(onRead)) {
    seen(chunk, false);
    flowing = client.write(chunk);
  }
  if (flowing) resume();
  else client.once('drain', resume);
  // The server may have ended before we got here: its 'end' is then gone.
  if (server.readableEnded) client.end();
  else server.once('end', () => client.end());
}

/** RST for a TCP socket; a stream without its own TCP handle (a TLS socket, the stack's stream) is destroyed. */
function abort(stream: Duplex): void {
  if (stream.destroyed) return;
  if (stream instanceof Socket) {
    try {
      // Throws for a socket whose handle is not TCP (a TLSSocket wraps its handle).
      stream.resetAndDestroy();
      return;
    } catch {
      // fall through
    }
  }
  stream.destroy();
}
