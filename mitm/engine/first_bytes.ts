// The first bytes of a flow on an inspected port: the client's ClientHello,
// or evidence that the flow is not TLS at all. Two ways to tell:
// - the client's first bytes are not a TLS handshake record (ClientHelloReader);
// - the server speaks first (an SSH, SMTP, FTP, POP3, IMAP or MySQL greeting):
//   a TLS server never sends a byte before the ClientHello (RFC 8446 §2), so
//   upstream bytes before it are proof. Without this, a client of a
//   server-speaks-first protocol would only end at the ClientHello deadline.
// Either way the verdict carries a protocol guess (protocol_guess.ts); a
// guess that still depends on bytes not yet arrived waits GUESS_WAIT_MS more.
//
// Sans-IO: fed what each side sent and how it ended; the owner keeps the
// deadline (DEFAULT_CLIENT_HELLO_TIMEOUT_MS) and the guess timer, which this
// asks for by answering 'wait_guess'.

import type { ClientHelloInfo, ClientHelloReader } from '../client_hello';
import { type ProtocolGuess, type Speaker, guessProtocol } from '../protocol_guess';

/** Bound on waiting for bytes that would sharpen a protocol guess. */
export const GUESS_WAIT_MS = 500;
/**
 * Past this many bytes from either side while a guess waits, the guess is made
 * with what is there: the side not being guessed is buffered too (for the
 * relay), and without a bound a fast sender would fill memory for GUESS_WAIT_MS.
 */
export const MAX_GUESS_BYTES = 64 * 1024;

export type FirstBytes =
  | { kind: 'done'; hello: ClientHelloInfo }
  /** Not TLS; the client's bytes are in the reader, the server's (if it spoke) in serverBytes. */
  | { kind: 'not_tls'; from: Speaker; guess: ProtocolGuess; serverBytes: Buffer }
  | { kind: 'error' | 'closed' | 'timeout'; reason: string; detail: string };

/** A verdict; 'wait_guess': arm the guess timer (GUESS_WAIT_MS), then call guessWaitOver(); null: need more. */
export type FirstBytesStep = FirstBytes | 'wait_guess' | null;

export class FirstBytesReader {
  private readonly fromServer: Buffer[] = [];
  private serverLen = 0;
  private guessing: Speaker | null = null;
  private guessWaitAsked = false;

  constructor(readonly reader: ClientHelloReader) {}

  clientData(chunk: Buffer): FirstBytesStep {
    const r = this.reader.push(chunk);
    if (this.guessing === 'client') return this.tryGuess('client', false);
    if (this.guessing === 'server') return this.reader.bufferedBytes >= MAX_GUESS_BYTES ? this.tryGuess('server', true) : null;
    if (r.kind === 'need_more') return null;
    if (r.kind === 'not_tls') return this.startGuessing('client');
    return r;
  }

  /** The client's FIN. */
  clientEnd(): FirstBytesStep {
    if (this.guessing !== null) return this.tryGuess(this.guessing, true);
    const r = this.reader.end();
    return r.kind === 'done' || r.kind === 'error' ? r : this.startGuessing('client');
  }

  /** The client's stream closed (or was already gone when the flow began). */
  clientClose(): FirstBytesStep {
    if (this.guessing !== null) return this.tryGuess(this.guessing, true);
    return { kind: 'closed', reason: 'client_closed', detail: `client closed after ${this.reader.bufferedBytes} bytes, before a ClientHello` };
  }

  serverData(chunk: Buffer): FirstBytesStep {
    this.fromServer.push(chunk);
    this.serverLen += chunk.length;
    if (this.guessing === null) return this.startGuessing('server');
    if (this.guessing === 'server') return this.tryGuess('server', false);
    return this.serverLen >= MAX_GUESS_BYTES ? this.tryGuess('client', true) : null;
  }

  serverEnd(): FirstBytesStep {
    return this.guessing === 'server' ? this.tryGuess('server', true) : null;
  }

  /** GUESS_WAIT_MS passed since 'wait_guess': the guess is made with what is there. */
  guessWaitOver(): FirstBytesStep {
    return this.guessing === null ? null : this.tryGuess(this.guessing, true);
  }

  /** The ClientHello deadline passed. */
  deadline(timeoutMs: number): FirstBytes {
    return { kind: 'timeout', reason: 'client_hello_timeout', detail: `no complete ClientHello within ${timeoutMs} ms (${this.reader.bufferedBytes} bytes read)` };
  }

  /** The server's bytes so far (it may have spoken first). */
  serverBytes(): Buffer {
    return Buffer.concat(this.fromServer, this.serverLen);
  }

  private startGuessing(side: Speaker): FirstBytesStep {
    this.guessing = side;
    return this.tryGuess(side, false);
  }

  /** Settles on the guess when the bytes decide it, else asks (once) to wait a little for more. */
  private tryGuess(side: Speaker, final: boolean): FirstBytesStep {
    const bytes = side === 'client' ? this.reader.buffered() : this.serverBytes();
    const guess = guessProtocol(bytes, side, final || bytes.length >= MAX_GUESS_BYTES);
    if (guess !== null) return { kind: 'not_tls', from: side, guess, serverBytes: this.serverBytes() };
    if (this.guessWaitAsked) return null;
    this.guessWaitAsked = true;
    return 'wait_guess';
  }
}
