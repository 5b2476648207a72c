// Origin host of the tunnel benchmark, run inside the origin namespace:
//   GET /file    streams the benchmark file (same bytes for every gateway)
//   GET /small   1 KiB, the probe that tells whether TCP passes at all
//   PUT /upload  swallows the body and answers how many bytes arrived
// and a plain TCP listener that accepts connections and leaves them idle, for
// the memory-per-flow measurement. Prints "ready" once everything listens.
// Usage: node tunnel_origin.js FILE HTTP_PORT IDLE_PORT
import { createReadStream, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';

const SMALL = Buffer.alloc(1024, 0x61);
// Above the 10,000 idle flows the benchmark opens: a SYN burst must not
// overflow the accept queue (the kernel clamps this to net.core.somaxconn).
const IDLE_BACKLOG = 4096;

function main(): void {
  const [file, httpPortArg, idlePortArg] = process.argv.slice(2);
  if (file === undefined || idlePortArg === undefined) throw new Error('usage: tunnel_origin FILE HTTP_PORT IDLE_PORT');
  const size = statSync(file).size;

  const http = createHttpServer((req, res) => {
    if (req.method === 'GET' && req.url === '/file') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
      return;
    }
    if (req.method === 'GET' && req.url === '/small') {
      res.writeHead(200, { 'content-length': SMALL.length });
      res.end(SMALL);
      return;
    }
    if (req.method === 'PUT' && req.url === '/upload') {
      let received = 0;
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => {
        const body = `${received}\n`;
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      });
      return;
    }
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });

  const idle: Set<Socket> = new Set();
  const idleServer = createTcpServer((s) => {
    idle.add(s);
    s.on('error', () => undefined);
    s.on('close', () => idle.delete(s));
  });

  let listening = 0;
  const ready = (): void => {
    if (++listening === 2) process.stdout.write('ready\n');
  };
  http.listen({ port: Number(httpPortArg), host: '0.0.0.0' }, ready);
  idleServer.listen({ port: Number(idlePortArg), host: '0.0.0.0', backlog: IDLE_BACKLOG }, ready);
}

main();
