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
}

export type UdpEgressFactory = (family: 4 | 6, host: string, port: number, h: UdpEgressHandlers) => UdpEgressSocket;

export const osUdpEgress: UdpEgressFactory = (family, host, port, h) => {
  const sock: Socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  const pending: Buffer[] = [];
  let connected = false;
  let closed = false;
  sock.on('message', (msg) => h.onMessage(msg));
  sock.on('error', (err: NodeJS.ErrnoException) => h.onError(err.code ?? 'EIO'));
  // A failed connect (a multicast or otherwise unconnectable destination) calls back with the error
  // instead of emitting it; sending on that socket would throw out of the event loop.
  sock.connect(port, host, (err?: Error) => {
    if (err) {
      pending.length = 0;
      h.onError((err as NodeJS.ErrnoException).code ?? 'EIO');
      return;
    }
    connected = true;
    for (const p of pending.splice(0)) sock.send(p);
  });
  return {
    send(payload) {
      if (closed) return;
      if (connected) sock.send(payload);
      // Bounded: a burst before connect() completes (one event-loop turn).
      else if (pending.length < 64) pending.push(Buffer.from(payload));
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
