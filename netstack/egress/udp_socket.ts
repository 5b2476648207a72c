// Socket egress for UDP: each flow is re-originated from its own OS socket,
// connected to the flow's destination so only that address can answer
// (like a port-restricted NAT).
import { createSocket, type Socket } from 'node:dgram';
import { processFds } from './fd_budget';

export interface UdpEgressHandlers {
  onMessage(payload: Buffer): void;
  /** ICMP errors reported by the kernel (ECONNREFUSED = port unreachable...); the socket stays usable. */
  onError(code: string): void;
  /**
   * The socket is unusable: connect() failed (ENETUNREACH without a route,
   * EACCES for a broadcast address, EINVAL for a scope-less link-local
   * group...) or a send threw. Called at most once; the flow must end.
   */
  onFailed(code: string): void;
}

export interface UdpEgressSocket {
  /** `payload` is only lent for the call (it may be a view into a packet whose memory is reused): a socket that keeps it copies it. */
  send(payload: Buffer): void;
  close(): void;
  /**
   * Memory held by datagrams accepted by send() but not yet handed to the
   * kernel: their bytes and a fixed cost each, so empty datagrams count too
   * (buffer budgets).
   */
  queuedBytes?(): number;
}

export type UdpEgressFactory = (family: 4 | 6, host: string, port: number, h: UdpEgressHandlers) => UdpEgressSocket;

/** Datagrams kept while connect() resolves (one event-loop turn). */
const MAX_PENDING = 64;
/** What a queued datagram holds beyond its bytes (libuv's request, Node's wrap, the buffer object): an empty one is not free. */
export const QUEUED_DATAGRAM_COST = 512;

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? 'EIO';
}

export const osUdpEgress: UdpEgressFactory = (family, host, port, h) => {
  const sock: Socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  processFds.opened();
  sock.once('close', () => processFds.closed());
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let state: 'connecting' | 'connected' | 'failed' | 'closed' = 'connecting';

  const fail = (err: unknown): void => {
    if (state === 'failed' || state === 'closed') return;
    state = 'failed';
    pending.length = 0;
    pendingBytes = 0;
    h.onFailed(errorCode(err));
  };
  /** Node holds the buffer until the kernel takes it, which can be after the call (EAGAIN): `owned` is ours alone. */
  const transmit = (owned: Buffer): void => {
    try {
      // Asynchronous send errors arrive as 'error' events; only argument and state errors throw.
      sock.send(owned);
    } catch (err) {
      fail(err);
    }
  };

  sock.on('message', (msg) => h.onMessage(msg));
  sock.on('error', (err: NodeJS.ErrnoException) => h.onError(errorCode(err)));
  try {
    // Node reports a failed connect only through this callback, never as an 'error' event.
    sock.connect(port, host, (err?: Error) => {
      if (state !== 'connecting') return;
      if (err) return fail(err);
      state = 'connected';
      pendingBytes = 0;
      for (const p of pending.splice(0)) transmit(p);
    });
  } catch (err) {
    // Invalid arguments (port 0...) throw at once: no flow, and no socket left behind.
    sock.close();
    throw err;
  }
  return {
    send(payload) {
      if (state === 'connected') transmit(Buffer.from(payload));
      else if (state === 'connecting' && pending.length < MAX_PENDING) {
        pending.push(Buffer.from(payload));
        pendingBytes += payload.length;
      }
    },
    // libuv queues datagrams the kernel cannot take yet (EAGAIN): without a check that queue has no bound.
    queuedBytes() {
      if (state === 'connecting') return pendingBytes + pending.length * QUEUED_DATAGRAM_COST;
      if (state !== 'connected') return 0;
      try {
        return sock.getSendQueueSize() + sock.getSendQueueCount() * QUEUED_DATAGRAM_COST;
      } catch {
        return 0; // the socket failed and is being closed
      }
    },
    close() {
      if (state === 'closed') return;
      state = 'closed';
      try {
        sock.close();
      } catch {
        // already closed after an error
      }
    },
  };
};
