// A TLS origin for the inspection end-to-end tests, run inside the origin
// namespace. One JSON file (written by the test) describes:
//   - HTTPS listeners that pick a certificate chain per SNI (exact name, then
//     "*.parent" for a wildcard), speaking HTTP/2 and HTTP/1.1; a listener
//     with tlsVersion 'TLSv1' is a legacy TLS 1.0-only server instead, one
//     with clientCaFile accepts only clients with a certificate (mutual TLS);
//   - plain HTTP listeners serving files by path (AIA caIssuers intermediates);
//   - banner listeners: a server that speaks first (an SSH or SMTP greeting),
//     then echoes what it reads, prefixed "echo:".
// Routes on the HTTPS listeners:
//   GET  /       "hello from HOST over HTTP/VERSION"
//   POST /login  SHA-256 digests of the Authorization and Cookie headers and of
//                the body (so a test can prove secrets arrived intact without
//                the origin echoing them), plus the configured Set-Cookie
//   GET  /ws     WebSocket (RFC 6455) echo of text frames, HTTP/1.1 Upgrade
// Every request is printed as a JSON line; "ready" once all listeners listen.
// Run: node dist/scripts/lab/tls_origin.js CONFIG_JSON

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createTcp } from 'node:net';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface TlsSite {
  /** PEM file with the chain exactly as the server sends it (leaf first). */
  certFile: string;
  keyFile: string;
}

export interface HttpsListener {
  address: string;
  port: number;
  /** servername → site; the first one also answers a ClientHello without SNI. */
  sites: Record<string, TlsSite>;
  /** 'TLSv1': a legacy server that offers TLS 1.0 only (RFC 8996 deprecated it). */
  tlsVersion?: 'TLSv1';
  /** Mutual TLS: only clients with a certificate from this CA (PEM file) are accepted. */
  clientCaFile?: string;
}

export interface HttpListener {
  address: string;
  port: number;
  /** URL path → file served as application/pkix-cert. */
  files: Record<string, string>;
}

export interface BannerListener {
  address: string;
  port: number;
  /** Sent as soon as a client connects. */
  greeting: string;
}

export interface TlsOriginConfig {
  https: HttpsListener[];
  http: HttpListener[];
  banner?: BannerListener[];
  /** The Set-Cookie value sent by POST /login. */
  setCookie?: string;
}

/** RFC 6455 1.3: the GUID appended to Sec-WebSocket-Key. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const WS_OP_TEXT = 0x1;
const WS_OP_CLOSE = 0x8;

function note(fields: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

const digest = (s: string | undefined): string | null => (s === undefined ? null : createHash('sha256').update(s).digest('hex'));

function sniContexts(listener: HttpsListener): { first: TlsSite; pick: (name: string) => SecureContext | undefined } {
  const contexts = new Map<string, SecureContext>();
  for (const [name, site] of Object.entries(listener.sites)) {
    // The client CA must be in every SNI context: the one a ClientHello selects is what verifies the client's certificate.
    const clientCa = listener.clientCaFile ? { ca: readFileSync(listener.clientCaFile) } : {};
    contexts.set(name.toLowerCase(), createSecureContext({ ...secureOptions(site, listener.tlsVersion), ...clientCa }));
  }
  const first = Object.values(listener.sites)[0];
  if (!first) throw new Error(`tls_origin: listener ${listener.address}:${listener.port} has no sites`);
  const pick = (name: string): SecureContext | undefined => {
    const lower = name.toLowerCase();
    const dot = lower.indexOf('.');
    return contexts.get(lower) ?? (dot > 0 ? contexts.get(`*${lower.slice(dot)}`) : undefined);
  };
  return { first, pick };
}

function secureOptions(site: TlsSite, version: 'TLSv1' | undefined): { cert: Buffer; key: Buffer; minVersion?: 'TLSv1'; maxVersion?: 'TLSv1'; ciphers: string } {
  // SECLEVEL=0: OpenSSL 3 otherwise refuses to serve a SHA-1-signed or
  // RSA-1024 chain, and TLS 1.0; those are exactly the bad origins under test.
  const legacy = version === 'TLSv1' ? { minVersion: version, maxVersion: version } : {};
  return { cert: readFileSync(site.certFile), key: readFileSync(site.keyFile), ciphers: 'DEFAULT@SECLEVEL=0', ...legacy };
}

function listening(server: { once(ev: 'listening', f: () => void): unknown; once(ev: 'error', f: (e: Error) => void): unknown }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (e: Error) => reject(new Error(`tls_origin: cannot listen on ${what}: ${e.message}`)));
  });
}

function handleRequest(config: TlsOriginConfig, req: Http2ServerRequest, res: Http2ServerResponse): void {
  const host = req.headers[':authority'] ?? req.headers.host ?? '';
  // `from`: who opened the connection (the concentrator for an inspected flow, in every egress mode).
  note({ listener: 'https', host, method: req.method, path: req.url, httpVersion: req.httpVersion, from: req.socket.remoteAddress });
  if (req.method === 'POST' && req.url === '/login') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (config.setCookie) res.setHeader('set-cookie', config.setCookie);
      res.setHeader('content-type', 'application/json');
      const auth = req.headers.authorization;
      const cookie = req.headers.cookie;
      res.end(JSON.stringify({ authorization: digest(auth), cookie: digest(cookie), body: digest(Buffer.concat(chunks).toString()) }));
    });
    return;
  }
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from ${host} over HTTP/${req.httpVersion}\n`);
}

/** RFC 6455 4.2.2 handshake, then echo every text frame until a close frame. */
function websocketEcho(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const key = req.headers['sec-websocket-key'];
  note({ listener: 'https', host: req.headers.host, method: req.method, path: req.url, upgrade: req.headers.upgrade });
  if (req.url !== '/ws' || typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
  let buf = head;
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const frame = parseClientFrame(buf);
      if (!frame) return;
      buf = buf.subarray(frame.length);
      if (frame.opcode === WS_OP_CLOSE) {
        socket.end(serverFrame(WS_OP_CLOSE, Buffer.alloc(0)));
        return;
      }
      if (frame.opcode === WS_OP_TEXT) socket.write(serverFrame(WS_OP_TEXT, frame.payload));
    }
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  if (head.length > 0) onData(Buffer.alloc(0));
}

/** RFC 6455 5.2: a client frame is always masked; lengths up to 2^16 are enough here. */
function parseClientFrame(buf: Buffer): { opcode: number; payload: Buffer; length: number } | null {
  if (buf.length < 2) return null;
  const opcode = buf[0] & 0x0f;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  }
  const masked = (buf[1] & 0x80) !== 0;
  const mask = masked ? buf.subarray(off, off + 4) : null;
  off += masked ? 4 : 0;
  if (buf.length < off + len) return null;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return { opcode, payload, length: off + len };
}

function serverFrame(opcode: number, payload: Buffer): Buffer {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, payload.length]) : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

async function main(configFile: string): Promise<void> {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as TlsOriginConfig;
  const ready: Promise<void>[] = [];
  for (const l of config.https) {
    const { first, pick } = sniContexts(l);
    const what = `${l.address}:${l.port}`;
    if (l.tlsVersion === 'TLSv1') {
      const server = createHttps({ ...secureOptions(first, l.tlsVersion), SNICallback: (name, cb) => cb(null, pick(name)) }, (_req, res) => res.end('legacy\n'));
      ready.push(listening(server, what));
      server.listen(l.port, l.address);
      continue;
    }
    const mutual = l.clientCaFile ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(l.clientCaFile) } : {};
    const server = createSecureServer(
      { ...secureOptions(first, undefined), ...mutual, allowHTTP1: true, SNICallback: (name, cb) => cb(null, pick(name)) },
      (req, res) => handleRequest(config, req, res),
    );
    // allowHTTP1 hands HTTP/1.1 connections to node:http, which emits 'upgrade' here.
    server.on('upgrade', websocketEcho);
    ready.push(listening(server, what));
    server.listen(l.port, l.address);
  }
  for (const l of config.http) {
    const server = createHttp((req, res) => {
      note({ listener: 'http', method: req.method, path: req.url });
      const file = req.url ? l.files[req.url] : undefined;
      if (req.method !== 'GET' || !file) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/pkix-cert');
      res.end(readFileSync(file));
    });
    ready.push(listening(server, `${l.address}:${l.port}`));
    server.listen(l.port, l.address);
  }
  for (const l of config.banner ?? []) {
    const server = createTcp((socket) => {
      note({ listener: 'banner', address: l.address });
      socket.on('error', () => socket.destroy());
      socket.on('data', (c: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), c])));
      socket.write(l.greeting);
    });
    ready.push(listening(server, `${l.address}:${l.port}`));
    server.listen(l.port, l.address);
  }
  await Promise.all(ready);
  process.stdout.write('ready\n');
}

if (require.main === module) {
  const [configFile] = process.argv.slice(2);
  if (!configFile) {
    process.stderr.write('usage: node dist/scripts/lab/tls_origin.js CONFIG_JSON\n');
    process.exit(2);
  }
  main(configFile).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
