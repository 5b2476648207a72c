// A tapping TCP proxy on 127.0.0.1 for tests: relays both directions to a
// local server and copies every chunk into an HTTP logger, as the TLS
// inspection engine does with decrypted bytes. Chunks are also recorded so
// real traffic can be replayed (split tests, fuzzing).
import net from 'node:net';
import { createHttpLogger } from '../../../../mitm/http_log/logger';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';
import { Event } from './helpers';

export interface Tap {
  port: number;
  records: HttpRequestRecord[];
  /** Per tapped connection, the chunks in the order the logger saw them. */
  captures: Event[][];
  /** Resolves once every tapped connection has closed and its logger ended. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function startTap(targetPort: number, alpn: string | null): Promise<Tap> {
  const records: HttpRequestRecord[] = [];
  const captures: Event[][] = [];
  let open = 0;
  let waiters: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    open++;
    const u = net.connect(targetPort, '127.0.0.1');
    sockets.add(c);
    sockets.add(u);
    const capture: Event[] = [];
    captures.push(capture);
    const logger = createHttpLogger({ alpn, sniHost: 'sni.test', now: () => Date.now(), emit: (r) => records.push(r) });
    let closed = 0;
    const onClose = (): void => {
      if (++closed < 2) return;
      logger.end();
      if (--open === 0) {
        const w = waiters;
        waiters = [];
        w.forEach((f) => f());
      }
    };
    c.on('data', (d: Buffer) => {
      capture.push({ dir: 'c2s', data: Buffer.from(d) });
      logger.clientToServer(d);
      u.write(d);
    });
    u.on('data', (d: Buffer) => {
      capture.push({ dir: 's2c', data: Buffer.from(d) });
      logger.serverToClient(d);
      c.write(d);
    });
    c.on('end', () => u.end());
    u.on('end', () => c.end());
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
    c.on('close', () => { sockets.delete(c); u.destroy(); onClose(); });
    u.on('close', () => { sockets.delete(u); c.destroy(); onClose(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    records,
    captures,
    idle: () => (open === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
