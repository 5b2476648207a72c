// Clients for the pinning and bypass tests, each ending a handshake the way
// a real client does:
// - sClient: `openssl s_client -verify_return_error`, which verifies inside
//   the handshake and sends a fatal alert (unknown_ca, RFC 8446 §6.2) when
//   the certificate does not chain to the CA it trusts: a pinned app;
// - abortHandshake: a real ClientHello, then FIN or RST on the server's
//   first flight (a closed tab, a dropped network, or a client faking it);
// - node:tls trusting only another CA: finishes the handshake, then closes
//   without an alert (node verifies after the handshake).

import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { tempDir } from './ca_helpers';

export interface SClientResult {
  /** The handshake completed and the chain verified against the CA file. */
  verified: boolean;
  /** The server's leaf as received, when the handshake got that far. */
  leaf: X509Certificate | null;
  output: string;
}

/** One connection with `openssl s_client`, trusting only `caPem`; closes right after the handshake. */
export function sClient(port: number, servername: string, caPem: string): Promise<SClientResult> {
  const dir = tempDir('sightline-sclient-');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-CAfile', caFile, '-verify_return_error'];
  return new Promise((resolve) => {
    const child = spawn('openssl', args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    // EOF on stdin makes s_client close the connection once the handshake is over.
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGTERM'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output)?.[0];
      const leaf = pem ? new X509Certificate(pem) : null;
      // s_client reports "0 (ok)" also when it never got a certificate to verify.
      resolve({ verified: leaf !== null && /Verify return code: 0 \(ok\)/.test(output), leaf, output });
    });
  });
}

/** The ClientHello node:tls sends for `servername` (with `opts`, e.g. maxVersion), captured from a throwaway listener. */
export async function clientHelloBytes(servername: string, opts: tls.ConnectionOptions = {}): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve) => {
      server.once('connection', (s) => s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
      }));
      const c = tls.connect({ host: '127.0.0.1', port, servername, ...opts });
      c.on('error', () => c.destroy());
    });
  } finally {
    server.close();
  }
}

/** Sends a real ClientHello, then closes (FIN) or resets (RST) as soon as the server answers. */
export function abortHandshake(port: number, hello: Buffer, how: 'close' | 'reset'): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => c.write(hello));
    c.once('data', () => (how === 'reset' ? c.resetAndDestroy() : c.end()));
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
}

/**
 * `hello` (one record holding one ClientHello, as node sends it) with one more
 * extension appended; record, handshake and extensions lengths fixed up.
 */
export function withExtension(hello: Buffer, type: number, data: Buffer): Buffer {
  const body = hello.subarray(9);
  let p = 2 + 32;
  p += 1 + body[p];
  p += 2 + body.readUInt16BE(p);
  p += 1 + body[p];
  const ext = Buffer.alloc(4 + data.length);
  ext.writeUInt16BE(type, 0);
  ext.writeUInt16BE(data.length, 2);
  data.copy(ext, 4);
  const newBody = Buffer.concat([body.subarray(0, p), Buffer.alloc(2), body.subarray(p + 2), ext]);
  newBody.writeUInt16BE(body.readUInt16BE(p) + ext.length, p);
  const head = Buffer.alloc(9);
  head[0] = 22;
  hello.copy(head, 1, 1, 3);
  head.writeUInt16BE(newBody.length + 4, 3);
  head[5] = 1;
  head.writeUIntBE(newBody.length, 6, 3);
  return Buffer.concat([head, newBody]);
}
