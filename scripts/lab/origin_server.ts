// An origin web server for tests and benchmarks, run inside a namespace:
//   GET  /bytes/N   N deterministic pseudo-random bytes (header x-sha256 has their digest)
//   POST /sha256    answers the SHA-256 (hex) and length of the request body
//   GET  /          "hello from origin"
// Run: node dist/scripts/lab/origin_server.js HTTP_PORT [HTTPS_PORT CERT_PEM KEY_PEM]
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';

const BLOCK = 64 * 1024;

/** Deterministic content: block i is SHA-256 chained, repeated; cheap to regenerate anywhere. */
export function patternBlock(): Buffer {
  const out = Buffer.alloc(BLOCK);
  let seed = createHash('sha256').update('sightline-origin').digest();
  for (let off = 0; off < BLOCK; off += seed.length) {
    seed.copy(out, off);
    seed = createHash('sha256').update(seed).digest();
  }
  return out;
}

export function patternDigest(n: number): string {
  const block = patternBlock();
  const h = createHash('sha256');
  for (let left = n; left > 0; left -= BLOCK) h.update(left >= BLOCK ? block : block.subarray(0, left));
  return h.digest('hex');
}

function handler(block: Buffer) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      const n = Number(m[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-sha256': patternDigest(n) });
      let left = n;
      const write = () => {
        while (left > 0) {
          const chunk = left >= BLOCK ? block : block.subarray(0, left);
          left -= chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      write();
      return;
    }
    if (req.method === 'POST' && req.url === '/sha256') {
      const h = createHash('sha256');
      let len = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        len += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ sha256: h.digest('hex'), length: len })));
      return;
    }
    res.end('hello from origin\n');
  };
}

if (require.main === module) {
  const [httpPort, httpsPort, cert, key] = process.argv.slice(2);
  const block = patternBlock();
  createHttp(handler(block)).listen(Number(httpPort), '::');
  if (httpsPort) createHttps({ cert: readFileSync(cert), key: readFileSync(key) }, handler(block)).listen(Number(httpsPort), '::');
}
