// The forwarder's upstream UDP sockets: a small fixed set per address family,
// each bound to a kernel-chosen random ephemeral port, a random one per query,
// and each replaced after ROTATE_AFTER_QUERIES queries or ROTATE_AFTER_MS so
// an observer cannot learn the source ports for long (RFC 5452 §9.2). A
// replaced socket stays open until the answers it waits for arrived or timed out.
import { randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export const SOCKETS_PER_FAMILY = 4;
export const ROTATE_AFTER_QUERIES = 1000;
export const ROTATE_AFTER_MS = 60_000;

export interface DnsSocket {
  readonly id: number;
  readonly sock: Socket;
  sent: number;
  readonly openedAt: number;
  retiring: boolean;
}

export interface DnsSocketsOptions {
  perFamily?: number;
  rotateAfterQueries?: number;
  rotateAfterMs?: number;
  onMessage(socket: number, msg: Buffer, from: RemoteInfo): void;
  onError(err: Error): void;
}

export class DnsSockets {
  private readonly active: Record<4 | 6, DnsSocket[]> = { 4: [], 6: [] };
  private readonly retiring = new Map<number, DnsSocket>();
  private nextId = 1;
  private opened = 0;
  private rotated = 0;

  constructor(private readonly opts: DnsSocketsOptions) {}

  get stats(): { open: number; opened: number; rotated: number } {
    return { open: this.active[4].length + this.active[6].length + this.retiring.size, opened: this.opened, rotated: this.rotated };
  }

  /** A random active socket of `family`, replacing it first when it is due for rotation. */
  pick(family: 4 | 6, now: number): DnsSocket {
    const pool = this.active[family];
    const size = this.opts.perFamily ?? SOCKETS_PER_FAMILY;
    while (pool.length < size) pool.push(this.open(family, now));
    const i = randomInt(pool.length);
    let s = pool[i];
    if (s.sent >= (this.opts.rotateAfterQueries ?? ROTATE_AFTER_QUERIES) || now - s.openedAt >= (this.opts.rotateAfterMs ?? ROTATE_AFTER_MS)) {
      s.retiring = true;
      this.retiring.set(s.id, s);
      this.rotated++;
      s = pool[i] = this.open(family, now);
    }
    s.sent++;
    return s;
  }

  /** Closes a replaced socket once nothing waits for an answer on it. */
  closeIfIdle(id: number, waiting: number): void {
    const s = this.retiring.get(id);
    if (s === undefined || waiting > 0) return;
    this.retiring.delete(id);
    close(s);
  }

  /** Closes every replaced socket that no answer waits for. */
  closeIdle(waiting: (id: number) => number): void {
    for (const id of [...this.retiring.keys()]) this.closeIfIdle(id, waiting(id));
  }

  closeAll(): void {
    for (const s of [...this.active[4], ...this.active[6], ...this.retiring.values()]) close(s);
    this.active[4] = [];
    this.active[6] = [];
    this.retiring.clear();
  }

  private open(family: 4 | 6, now: number): DnsSocket {
    const sock = createSocket(family === 4 ? 'udp4' : 'udp6');
    const s: DnsSocket = { id: this.nextId++, sock, sent: 0, openedAt: now, retiring: false };
    sock.on('message', (msg, from) => this.opts.onMessage(s.id, msg, from));
    sock.on('error', (err) => {
      // Replaced at its next pick: a socket that failed is not trusted to work again.
      s.sent = Number.MAX_SAFE_INTEGER;
      this.opts.onError(err);
    });
    // Port 0: the kernel picks a random free ephemeral port (Linux randomizes UDP binds).
    sock.bind(0);
    // Never keeps the process alive on its own.
    sock.unref();
    this.opened++;
    return s;
  }
}

function close(s: DnsSocket): void {
  try {
    s.sock.close();
  } catch {
    // already closed after an error
  }
}
