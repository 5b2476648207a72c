// Socket egress for UDP: each flow is re-originated from its own OS socket,
// connected to the flow's destination so only that address can answer
// (like a port-restricted NAT).
import { createSocket, type Socket } from 'node:dgram';

export interface UdpEgressHandlers {
  onMessage(payload: Buffer): void;
  /** ICMP errors reported by the kernel (ECONNREFUSED = port unreachable...). */
  onError(code: string): void;
}

export interface UdpEgressSocket {
  send(payload: Buffer): void;
  close(): void;
  /** Bytes accepted by send() but not yet handed to the kernel (buffer budgets). */
  queuedBytes?(): number;
}

export type UdpEgressFactory = (family: 4 | 6, host: string, port: number, h: UdpEgressHandlers) => UdpEgressSocket;

export const osUdpEgress: UdpEgressFactory = (family, host, port, h) => {
  const sock: Socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let connected = false;
  let closed = false;
  sock.on('message', (msg) => h.onMessage(msg));
  sock.on('error', (err: NodeJS.ErrnoException) => h.onError(err.code ?? 'EIO'));
  sock.connect(port, host, () => {
    connected = true;
    pendingBytes = 0;
    for (const p of pending.splice(0)) sock.send(p);
  });
  return {
    send(payload) {
      if (closed) return;
      if (connected) sock.send(payload);
      // Bounded: a burst before connect() completes (one event-loop turn).
      else if (pending.length < 64) {
        pending.push(Buffer.from(payload));
        pendingBytes += payload.length;
      }
    },
    // libuv queues datagrams the kernel cannot take yet (EAGAIN): without a check that queue has no bound.
    queuedBytes() {
      if (closed || !connected) return closed ? 0 : pendingBytes;
      try {
        return sock.getSendQueueSize();
      } catch {
        return 0; // the socket failed and is being closed
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        sock.close();
      } catch {
        // already closed after an error
      }
    },
  };
};
