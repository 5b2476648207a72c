// The admin endpoint (admin.listen, 127.0.0.1:9810 by default): Prometheus
// /metrics and /healthz for load balancers and systemd watchdogs. Read-only,
// GET only, no request bodies; loopback unless an admin configured another
// address.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { parseHostPort } from '../config';

export interface Health {
  /** The WireGuard UDP socket is open. */
  up: boolean;
  listenPort: number;
  peers: number;
  connected: number;
  uptimeSeconds: number;
}

export class AdminServer {
  private constructor(private readonly server: Server) {}

  static async listen(hostPort: string, metrics: Registry, health: () => Health): Promise<AdminServer> {
    const hp = parseHostPort(hostPort, true);
    if (hp === null) throw new Error(`admin.listen ${JSON.stringify(hostPort)}: expected IP:PORT`);
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, maxHeaderSize: 8192 }, (req, res) => {
      void respond(req, res, metrics, health).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EADDRNOTAVAIL' ? 'is not an address of this host' : `failed (${err.code ?? err.message})`;
        reject(new Error(`admin.listen ${hostPort} ${why}: set admin.listen to a free IP:PORT in the config, or "off"`));
      });
      server.listen(hp.port, hp.host, () => resolve());
    });
    return new AdminServer(server);
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

async function respond(req: IncomingMessage, res: ServerResponse, metrics: Registry, health: () => Health): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (path === '/metrics') {
    const text = await metrics.metrics();
    res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text);
    return;
  }
  if (path === '/healthz') {
    const h = health();
    const body = JSON.stringify(h.up ? { status: 'ok', ...h } : { status: 'unavailable', reason: 'the WireGuard UDP socket is not open', ...h }) + '\n';
    res.writeHead(h.up ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
}
