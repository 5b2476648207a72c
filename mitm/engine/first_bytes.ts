// The first bytes of a flow on an inspected port: the client's ClientHello,
// or evidence that the flow is not TLS at all. Two ways to tell:
// - the client's first bytes are not a TLS handshake record (ClientHelloReader);
// - the server speaks first (an SSH, SMTP, FTP, POP3, IMAP or MySQL greeting):
//   a TLS server never sends a byte before the ClientHello (RFC 8446 §2), so
//   upstream bytes before it are proof. Without this, a client of a
//   server-speaks-first protocol would only end at the ClientHello deadline.
// Either way the verdict carries a protocol guess (protocol_guess.ts); a
// guess that still depends on bytes not yet arrived waits GUESS_WAIT_MS more.

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientHelloInfo, ClientHelloReader } from '../client_hello';
import { type ProtocolGuess, type Speaker, guessProtocol } from '../protocol_guess';

/** Bound on waiting for bytes that would sharpen a protocol guess. */
export const GUESS_WAIT_MS = 500;
/** Past this many bytes from the side being guessed, the guess is made with what is there. */
const MAX_GUESS_BYTES = 64 * 1024;

export type FirstBytes =
  | { kind: 'done'; hello: ClientHelloInfo }
  /** Not TLS; the client's bytes are in the reader, the server's (if it spoke) in serverBytes. */
  | { kind: 'not_tls'; from: Speaker; guess: ProtocolGuess; serverBytes: Buffer }
  | { kind: 'error' | 'closed' | 'timeout'; reason: string; detail: string };

/** Feeds the client's bytes to the reader, and watches the server's, until one decides, a side ends, or the deadline passes. */
export function readFirstBytes(client: Duplex, upstream: Socket, reader: ClientHelloReader, timeoutMs: number): Promise<FirstBytes> {
  return new Promise((resolve) => {
    const fromServer: Buffer[] = [];
    let serverLen = 0;
    let guessing: Speaker | null = null;
    let guessTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (v: FirstBytes): void => {
      if (settled) return;
      settled = true;
      // pause() before removing the listener: a flowing stream without 'data' listeners drops bytes.
      client.pause();
      upstream.pause();
      client.off('data', onClientData);
      client.off('end', onClientEnd);
      client.off('close', onClientClose);
      upstream.off('data', onServerData);
      upstream.off('end', onServerEnd);
      clearTimeout(timer);
      clearTimeout(guessTimer);
      resolve(v);
    };
    const serverBytes = (): Buffer => Buffer.concat(fromServer, serverLen);
    const bytesOf = (side: Speaker): Buffer => (side === 'client' ? reader.buffered() : serverBytes());
    /** Settles on the guess when the bytes decide it, else waits a little for more. */
    const tryGuess = (side: Speaker, final: boolean): void => {
      const bytes = bytesOf(side);
      const guess = guessProtocol(bytes, side, final || bytes.length >= MAX_GUESS_BYTES);
      if (guess !== null) {
        done({ kind: 'not_tls', from: side, guess, serverBytes: serverBytes() });
        return;
      }
      guessTimer ??= setTimeout(() => tryGuess(side, true), GUESS_WAIT_MS);
    };
    const startGuessing = (side: Speaker): void => {
      guessing = side;
      tryGuess(side, false);
    };

    const onClientData = (chunk: Buffer): void => {
      const r = reader.push(chunk);
      if (guessing !== null) {
        if (guessing === 'client') tryGuess('client', false);
        return;
      }
      if (r.kind === 'need_more') return;
      if (r.kind === 'not_tls') startGuessing('client');
      else done(r);
    };
    const onClientEnd = (): void => {
      if (guessing !== null) {
        tryGuess(guessing, true);
        return;
      }
      const r = reader.end();
      if (r.kind === 'done' || r.kind === 'error') done(r);
      else startGuessing('client');
    };
    const onClientClose = (): void => {
      if (guessing !== null) tryGuess(guessing, true);
      else done({ kind: 'closed', reason: 'client_closed', detail: `client closed after ${reader.bufferedBytes} bytes, before a ClientHello` });
    };
    const onServerData = (chunk: Buffer): void => {
      fromServer.push(chunk);
      serverLen += chunk.length;
      if (guessing === null) startGuessing('server');
      else if (guessing === 'server') tryGuess('server', false);
    };
    const onServerEnd = (): void => {
      if (guessing === 'server') tryGuess('server', true);
    };
    const timer = setTimeout(() => done({
      kind: 'timeout', reason: 'client_hello_timeout', detail: `no complete ClientHello within ${timeoutMs} ms (${reader.bufferedBytes} bytes read)`,
    }), timeoutMs);
    client.on('data', onClientData);
    client.once('end', onClientEnd);
    client.once('close', onClientClose);
    upstream.on('data', onServerData);
    upstream.once('end', onServerEnd);
    // A stream already gone emits nothing more.
    if (client.destroyed || client.readableEnded) onClientClose();
  });
}
