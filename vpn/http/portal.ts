// The employee portal: http://<concentrator tunnel address>/ (IPv4 and IPv6),
// a concentrator service on TCP port 80 of its own tunnel addresses, never
// egress. The flow arrives terminated by the userspace stack; node:http
// parses it (the stream is handed to an http.Server that never listens).
// The user is the flow's owner: the device whose WireGuard key sent from
// that tunnel address (cryptokey routing), so there is no login, and a
// page only ever shows its own user's data. Bounded: request head size,
// time per connection, connections per user.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counters, TcpOpenError, type TcpFlowHandler, type TcpFlowInfo } from '../../netstack';
import type { RecentDecisions } from './decisions';
import { renderPortal, type PortalDevice } from './portal_page';
import type { InspectionScope } from './scope';

export const PORTAL_PORT = 80;
const MAX_CONNECTIONS_PER_USER = 8;
const CONNECTION_MS = 30_000;
const MAX_HEADER_BYTES = 8192;

/** The company CA as the page offers it. */
export interface PortalCa {
  pem: Buffer;
  der: Buffer;
  p12: Buffer;
  /** As `sightline ca show` prints it: "SHA-256 AB:CD:...". */
  fingerprint: string;
  subject: string;
  validTo: string;
  organization: string | null;
}

/** What the page shows about a user, read when it is requested. */
export interface PortalSource {
  ca: PortalCa;
  /** What is and is not inspected for this user, read from the running policy at each request. */
  scopeOf(user: string): InspectionScope;
  decisions: RecentDecisions;
  /** The user's devices; `ownerId` is the device the request came from. */
  devicesOf(user: string, ownerId: string): PortalDevice[];
}

interface Visitor {
  user: string;
  ownerId: string;
}

const visitorOf = new WeakMap<Duplex, Visitor>();

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export class Portal {
  private readonly server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.respond(req, res));
  private readonly perUser = new Map<string, number>();
  private readonly counterSet = new Counters(['requests', 'refusedConnections']);

  constructor(private readonly src: PortalSource) {
    this.server.on('clientError', (_err, socket: Duplex) => socket.destroy());
  }

  get counters(): Record<'requests' | 'refusedConnections', number> {
    return this.counterSet.values;
  }

  /** The handler for a TCP flow to the portal port of a tunnel address. */
  handlerFor(flow: TcpFlowInfo): TcpFlowHandler {
    return () => {
      const user = flow.owner.user;
      const open = this.perUser.get(user) ?? 0;
      if (open >= MAX_CONNECTIONS_PER_USER) {
        this.counterSet.inc('refusedConnections');
        return Promise.reject(new TcpOpenError('refused', `portal: ${open} connections of ${user} already open`));
      }
      this.perUser.set(user, open + 1);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        const n = (this.perUser.get(user) ?? 1) - 1;
        if (n <= 0) this.perUser.delete(user);
        else this.perUser.set(user, n);
      };
      return Promise.resolve({
        attach: (client: Duplex) => this.attach(client, { user, ownerId: flow.owner.id }, release),
        abort: release,
      });
    };
  }

  private attach(client: Duplex, visitor: Visitor, release: () => void): void {
    visitorOf.set(client, visitor);
    const timer = setTimeout(() => client.destroy(), CONNECTION_MS);
    client.once('close', () => {
      clearTimeout(timer);
      release();
    });
    client.on('error', () => client.destroy());
    this.server.emit('connection', client);
  }

  private respond(req: IncomingMessage, res: ServerResponse): void {
    this.counterSet.inc('requests');
    const visitor = visitorOf.get(req.socket);
    if (visitor === undefined) {
      res.writeHead(500).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain', connection: 'close', ...SECURITY_HEADERS }).end('method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const ca = this.src.ca;
    const file = (type: string, name: string, body: Buffer): void => {
      res.writeHead(200, { 'content-type': type, 'content-disposition': `attachment; filename="${name}"`, 'content-length': body.length, ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (path) {
      case '/':
        return this.page(visitor, req, res);
      case '/ca.pem':
        return file('application/x-pem-file', 'sightline-ca.pem', ca.pem);
      case '/ca.der':
        return file('application/x-x509-ca-cert', 'sightline-ca.cer', ca.der);
      case '/ca.p12':
        return file('application/x-pkcs12', 'sightline-ca.p12', ca.p12);
      default:
        res.writeHead(404, { 'content-type': 'text/plain', ...SECURITY_HEADERS }).end('not found: the page is at /\n');
    }
  }

  private page(visitor: Visitor, req: IncomingMessage, res: ServerResponse): void {
    const { ca, decisions } = this.src;
    const html = renderPortal({
      user: visitor.user,
      company: ca.organization ?? 'Company',
      fingerprint: ca.fingerprint,
      caSubject: ca.subject,
      caValidTo: ca.validTo,
      scope: this.src.scopeOf(visitor.user),
      devices: this.src.devicesOf(visitor.user, visitor.ownerId),
      decisions: decisions.of(visitor.user),
      now: Date.now(),
    });
    const body = Buffer.from(html);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
