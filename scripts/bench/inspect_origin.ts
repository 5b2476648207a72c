// HTTPS origin of the inspection benchmark, run inside the origin namespace.
// Every `<name>.crt` in CERT_DIR (leaf + intermediate, key `leaf.key`) is
// served for that SNI, so each benchmark name presents its own certificate.
//   GET /file    the benchmark file (the same bytes for every pipeline)
//   GET /small   a tiny response, for connection-rate and first-visit tests
// HTTP/1.1 only (what Squid speaks both ways), keep-alive allowed. No TLS
// session resumption: a proxy's repeat visit then costs the same upstream
// handshake as its first, and first-minus-repeat isolates what the first
// visit adds on the proxy's side (minting). Prints "ready" once it listens.
// Usage: node inspect_origin.js CERT_DIR DEFAULT_NAME FILE PORT
import { constants } from 'node:crypto';
import { createReadStream, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { connect, createSecureContext, type SecureContext } from 'node:tls';

const SMALL = Buffer.from('ok\n');

function main(): void {
  const [certDir, defaultName, file, portArg] = process.argv.slice(2);
  if (portArg === undefined) throw new Error('usage: inspect_origin CERT_DIR DEFAULT_NAME FILE PORT');
  const key = readFileSync(join(certDir, 'leaf.key'));
  const contexts = new Map<string, SecureContext>();
  for (const f of readdirSync(certDir)) {
    if (f.endsWith('.crt')) contexts.set(f.slice(0, -'.crt'.length), createSecureContext({ key, cert: readFileSync(join(certDir, f)), secureOptions: constants.SSL_OP_NO_TICKET }));
  }
  const fallback = contexts.get(defaultName);
  if (fallback === undefined) throw new Error(`no certificate for ${defaultName} in ${certDir}`);
  const size = statSync(file).size;

  const server = createServer({
    key,
    cert: readFileSync(join(certDir, `${defaultName}.crt`)),
    SNICallback: (name, cb) => cb(null, contexts.get(name.toLowerCase()) ?? fallback),
    // No tickets; without newSession/resumeSession listeners there is no
    // session-ID cache either, so every handshake is a full one.
    secureOptions: constants.SSL_OP_NO_TICKET,
  }, (req, res) => {
    if (req.method === 'GET' && req.url === '/file') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
      return;
    }
    if (req.method === 'GET' && req.url === '/small') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length });
      res.end(SMALL);
      return;
    }
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });
  server.on('tlsClientError', () => undefined);
  // A connection burst from a proxy must not overflow the accept queue.
  server.listen({ port: Number(portArg), host: '0.0.0.0', backlog: 1024 }, () => {
    warmContexts(Number(portArg), [...contexts.keys()]).then(
      () => process.stdout.write('ready\n'),
      (err: unknown) => {
        process.stderr.write(`warming failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  });
}

/**
 * One handshake per name over loopback before "ready": whatever OpenSSL does
 * on a context's first use is then not part of a proxy's first visit.
 */
async function warmContexts(port: number, names: string[]): Promise<void> {
  for (const servername of names) {
    await new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => s.destroy());
      s.on('close', () => resolve());
      s.on('error', () => undefined);
    });
  }
}

main();
