// In-memory streams for the engine's adapter tests: no sockets, no ports.
// A pair behaves like a TCP connection as the engine sees one: bytes in
// order with backpressure (a write completes only once the other end reads),
// each direction ends on its own (half-close), and destroying one end is a
// FIN to the other, or a reset when it left bytes unread or failed. A held direction keeps its bytes until released, so a test can
// decide when a flight arrives. Servers (node:https, node:http2, node:tls,
// node:net) take the far end through their 'connection' event.

import { Duplex } from 'node:stream';
import type { EngineClock } from '../../../mitm/engine';

class End extends Duplex {
  peer!: End;
  private pendingWrite: (() => void) | null = null;
  private held: Buffer[] | null = null;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    const cb = this.peer.pendingWrite;
    this.peer.pendingWrite = null;
    cb?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.held) {
      this.held.push(chunk);
      cb();
      return;
    }
    // Delivered on a later tick, as from a real connection: never inside the writer's own call.
    process.nextTick(() => {
      if (this.peer.destroyed || this.peer.push(chunk)) cb();
      else this.pendingWrite = () => cb();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    process.nextTick(() => {
      if (!this.peer.destroyed) this.peer.push(null);
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const pending = this.pendingWrite;
    this.pendingWrite = null;
    pending?.();
    // As TCP's close(): a FIN, unless bytes we never read are left or the close is an error's, which reset the far end.
    const reset = err !== null || this.readableLength > 0;
    const finSent = this.writableFinished;
    process.nextTick(() => {
      if (this.peer.destroyed) return;
      if (reset) this.peer.destroy(connectionReset());
      else if (!finSent) this.peer.push(null);
    });
    cb(err);
  }

  /** Bytes written from now on wait until release(). */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const b of held) if (!this.peer.destroyed) this.peer.push(b);
  }
}

const connectionReset = (): Error => Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET' });

export type MemoryEnd = End;

/** Two connected ends: what one writes, the other reads. */
export function duplexPair(): [MemoryEnd, MemoryEnd] {
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A server's connection listener, fed an in-memory connection; returns the near end. */
export function connectTo(server: { emit(event: 'connection', socket: Duplex): boolean; allowHalfOpen?: boolean }): MemoryEnd {
  const [near, far] = duplexPair();
  // As a server's own sockets: a reset is the connection's end, not the process's,
  // and without allowHalfOpen the server's side ends when the client's does.
  far.on('error', () => undefined);
  if (server.allowHalfOpen !== true) far.once('end', () => far.end());
  server.emit('connection', far);
  return near;
}

/** The engine's clock, moved by the test: timers fire only when advance() passes their time. */
export class FakeClock implements EngineClock {
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 1;

  constructor(public ms: number = Date.now()) {}

  now(): number {
    return this.ms;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.ms + ms, fn, id });
    return id;
  }

  clearTimer(timer: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== timer);
  }

  /** Timers armed and not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const until = this.ms + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((x, y) => x.at - y.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = due.at;
      due.fn();
    }
    this.ms = until;
  }
}

/** Resolves after pending I/O callbacks ran: in-memory streams progress on the event loop's turns. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Turns of the event loop until `check` holds; a bounded number, then a clear failure. */
export async function until<T>(what: string, check: () => T | undefined | false, maxTurns = 20_000): Promise<T> {
  for (let i = 0; i < maxTurns; i++) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    await turn();
  }
  throw new Error(`gave up waiting for ${what}`);
}
