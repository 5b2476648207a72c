// A terminated TCP flow as a Node Duplex: what upstream code (socket egress,
// the TLS inspection engine) reads and writes. Backpressure is end to end:
// when the consumer stops reading, the endpoint's receive buffer fills and the
// window advertised to the client closes; when the endpoint's send buffer is
// full, writes wait for the client's ACKs; when the flow's user is over its
// buffer budget, writes wait for room (the upstream socket stops being read).
//
// Node calls _read/_write from other streams' events (the upstream socket's
// 'data' through pipe): an exception there would reach the process, so each
// hands a failure of the endpoint to its flow instead.
//
// This is an edge: Node calls it outside any call into the stack, so it reads
// the clock and passes `now` to the endpoint and its flow.
import { Duplex } from 'node:stream';
import type { Clock } from './clock';
import type { TcpEndpoint } from './tcp';
import { ownCopy } from './wire/bytes';

/** What the stream needs from its flow: a way to flush output, and where a failure goes. */
export interface FlowDriver {
  /** Send what the endpoint produced and process its events. Never throws. */
  flush(now: number): void;
  /** The endpoint threw: end the flow (it destroys this stream). */
  fail(err: unknown, now: number): void;
  /** Bytes the flow's user may still buffer (buffer budgets). */
  room(): number;
  /** Call onWritable() once the user has room again. */
  waitForRoom(): void;
}

export class TcpEndpointStream extends Duplex {
  private wantRead = false;
  private pendingWrite: { chunk: Buffer; cb: (err?: Error | null) => void } | null = null;
  private peerFinished = false;
  private pumpQueued = false;
  private ended = false;
  /** The chunk being written is reused by its owner after the call: keep only copies of it. */
  private transient = false;

  constructor(
    private readonly ep: TcpEndpoint,
    private readonly clock: Clock,
    private readonly driver: FlowDriver,
  ) {
    // The endpoint takes writes at once unless its send queue or the user's
    // buffer budget is full; then this mark is all that waits here before the
    // upstream socket is paused, so it is kept small.
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
  }

  // Called by the flow when the endpoint reports events.
  onReadable(): void {
    // Read once the datagrams of this receive batch are all in (microtasks
    // run after the edge's batch callback): the segments of one batch reach
    // the upstream socket in one write, not one write (syscall) per segment.
    if (this.wantRead && !this.pumpQueued) {
      this.pumpQueued = true;
      queueMicrotask(this.queuedPump);
    }
  }

  private readonly queuedPump = (): void => {
    this.pumpQueued = false;
    if (this.wantRead && !this.destroyed) this.pump();
  };

  onWritable(): void {
    const p = this.pendingWrite;
    if (p === null) return;
    this.pendingWrite = null;
    this.writeChunk(p.chunk, p.cb);
  }

  onPeerFin(): void {
    finPacer.add(this);
  }

  /** The client's FIN, passed on by the pacer (see FinPacer). */
  deliverPeerFin(): void {
    if (this.destroyed || this.peerFinished) return;
    this.peerFinished = true;
    if (this.wantRead) this.pump();
  }

  onClosed(reason: string): void {
    if (this.destroyed) return;
    // Data that came before the reset in the same receive batch is still
    // waiting for the batched read: the reader gets it first (a client's last
    // TLS alert before its RST is what pinning detection reads).
    if (this.pumpQueued && this.wantRead) {
      this.pumpQueued = false;
      this.pump();
    }
    if (reason === 'fin') {
      this.peerFinished = true;
      this.pump();
      return;
    }
    const err = Object.assign(new Error(`TCP flow ${reason}`), { code: reason === 'timeout' ? 'ETIMEDOUT' : 'ECONNRESET' });
    this.destroy(err);
  }

  override _read(): void {
    this.wantRead = true;
    this.pump();
  }

  private pump(): void {
    let drained = false;
    try {
      while (this.wantRead) {
        const chunk = this.ep.read();
        if (chunk === null) {
          drained = true;
          break;
        }
        if (!this.push(chunk)) this.wantRead = false;
      }
    } catch (err) {
      this.driver.fail(err, this.clock());
      return;
    }
    // read() may have opened the window: send the update.
    this.driver.flush(this.clock());
    if (this.peerFinished && drained && !this.ended) {
      this.ended = true;
      this.push(null);
    }
  }

  /**
   * write() for a chunk whose memory its owner reuses once this returns (a
   * shared read buffer): the endpoint copies what it takes into its send
   * queue, and what must wait is copied. False: wait for 'drain'.
   */
  writeTransient(chunk: Buffer): boolean {
    // Something already waits (or the stream is corked): Writable keeps the chunk itself.
    if (this.writableLength > 0 || this.writableCorked > 0) return this.write(ownCopy(chunk));
    this.transient = true;
    try {
      return this.write(chunk);
    } finally {
      this.transient = false;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeChunk(chunk, cb);
  }

  private writeChunk(chunk: Buffer, cb: (err?: Error | null) => void): void {
    // The budget is charged the send queue's memory, which grows a chunk at a time.
    const fits = this.ep.writableWithin(this.driver.room());
    const part = fits < chunk.length ? chunk.subarray(0, fits) : chunk;
    let taken = 0;
    if (part.length > 0) {
      const now = this.clock();
      try {
        taken = this.ep.write(part, now);
      } catch (err) {
        this.driver.fail(err, now);
        cb(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.driver.flush(now);
    }
    if (taken >= chunk.length) {
      cb();
      return;
    }
    const rest = chunk.subarray(taken);
    this.pendingWrite = { chunk: this.transient ? ownCopy(rest) : rest, cb };
    // Short of budget rather than of send buffer: the budget wakes us, not the endpoint.
    if (taken === part.length) this.driver.waitForRoom();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const now = this.clock();
    try {
      this.ep.shutdownWrite(now);
    } catch (err) {
      this.driver.fail(err, now);
      cb(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.driver.flush(now);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Node destroys a Duplex by itself once both directions ended (autoDestroy).
    // After FINs both ways the endpoint finishes the close on its own (LAST-ACK
    // waits for the ACK of our FIN, RFC 9293 §3.6); a RST here would reset a
    // connection that ended cleanly, and the client's final ACK would then hit
    // an unknown flow.
    const cleanEnd = err === null && this.ended && this.writableFinished;
    if (!cleanEnd && this.ep.state !== 'CLOSED' && this.ep.state !== 'TIME-WAIT') {
      const now = this.clock();
      try {
        this.ep.abort(now);
      } catch (e) {
        this.driver.fail(e, now);
      }
      this.driver.flush(now);
    }
    const p = this.pendingWrite;
    this.pendingWrite = null;
    p?.cb(err ?? new Error('stream destroyed'));
    cb(err);
  }
}

/**
 * Passes the clients' FINs on to the upstream side at most FINS_PER_TURN per
 * event-loop turn. Passing a FIN on ends the upstream socket, and the origin's
 * answer ends the flow (stream, relay, socket, record): hundreds of
 * microseconds each. When thousands of flows close at once, doing it all as
 * the FINs arrive would hold the loop for seconds while the tunnel's socket
 * fills, ACKs go out late, clients retransmit and a new connection waits
 * behind all of it. Paced, the FINs are ACKed as they arrive and the closes
 * are done between turns that read the tunnel.
 *
 * 16 rather than 64: each turn reads up to 1,024 datagrams, so while a burst
 * of FINs is being read the closes take a smaller share of the loop and the
 * FINs behind them are ACKed sooner. With 10,000 flows closing at once
 * (`npm run bench -- tunnel`'s lab, eight interleaved pairs), the first new
 * connection came after a median of 460 ms instead of 585 ms.
 */
export const FINS_PER_TURN = 16;

class FinPacer {
  /** Streams waiting, from `head` on; the slots before it are cleared so a delivered stream is not kept alive. */
  private queue: Array<TcpEndpointStream | undefined> = [];
  private head = 0;
  private scheduled = false;

  add(s: TcpEndpointStream): void {
    this.queue.push(s);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const end = Math.min(this.queue.length, this.head + FINS_PER_TURN);
    for (; this.head < end; this.head++) {
      const s = this.queue[this.head];
      this.queue[this.head] = undefined;
      if (s === undefined) continue;
      // An error boundary per flow, as on the receive path this hand-off left:
      // a failure ends that flow (its stream's error), never the turn or the process.
      try {
        s.deliverPeerFin();
      } catch (err) {
        s.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      this.scheduled = true;
      setImmediate(this.run);
    }
  };
}

const finPacer = new FinPacer();
