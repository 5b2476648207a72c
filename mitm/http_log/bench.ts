// Throughput of the HTTP logger on bulk bodies: it sees every byte of
// inspected traffic, so DATA frames and HTTP/1.1 bodies must cost O(1) per
// chunk. Chunks are 16 KiB (one TLS record), deliberately misaligned with
// h2 frames (16,393 bytes each). Anchor: copying the same chunks once, the
// least any byte-touching parser would cost.
// Registered in `npm run bench` as the `http_log` group (scripts/bench).
import { encodeFrame } from './h2_frames';
import { createHttpLogger } from './logger';
import { HttpRequestRecord } from './record';

/** Same shape as scripts/bench/table.ts BenchRow. */
export interface HttpLogBenchRow {
  name: string;
  value: number;
  unit: string;
  anchor?: string;
}

const CHUNK = 16 * 1024;
const TOTAL = 512 * 1024 * 1024;
const FRAME_PAYLOAD = 16 * 1024;

const h2Frame = encodeFrame;

function lit(name: string, value: string): Buffer {
  // RFC 7541 §6.2.2 literal without indexing, new name, lengths < 127.
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** Feeds `stream` (cut into CHUNK slices) `reps` times; returns MB/s. */
function pump(feed: (c: Buffer) => void, stream: Buffer, bytes: number): number {
  fed = 0;
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += CHUNK) chunks.push(stream.subarray(off, off + CHUNK));
  const reps = Math.max(1, Math.round(bytes / stream.length));
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) for (const c of chunks) feed(c);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fed = reps * stream.length;
  return fed / 1e6 / s;
}

let fed = 0;

/**
 * A parser that had stopped would skip bytes and look fast: end the
 * connection and check the record counted every body byte.
 */
function verify(logger: ReturnType<typeof createHttpLogger>, sink: HttpRequestRecord[], expected: number, what: string): void {
  sink.length = 0;
  logger.end();
  const got = sink.length === 1 ? sink[0].bytesDown : -1;
  if (got !== expected) throw new Error(`bench ${what}: counted ${got} body bytes, expected ${expected}`);
}

function loggerFor(alpn: string, sink: HttpRequestRecord[]): ReturnType<typeof createHttpLogger> {
  return createHttpLogger({ alpn, sniHost: 'bench', now: () => 0, emit: (r) => sink.push(r) });
}

export async function benchHttpLog(): Promise<HttpLogBenchRow[]> {
  const rows: HttpLogBenchRow[] = [];
  const sink: HttpRequestRecord[] = [];

  // h2: 64 MiB of DATA frames on one stream, repeated.
  const frames: Buffer[] = [];
  const payload = Buffer.alloc(FRAME_PAYLOAD, 0x61);
  for (let i = 0; i < 4096; i++) frames.push(h2Frame(0, 0, 1, payload));
  const h2Data = Buffer.concat(frames);
  const h2 = loggerFor('h2', sink);
  h2.clientToServer(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0, Buffer.alloc(0)),
    h2Frame(1, 0x5, 1, Buffer.concat([Buffer.from([0x82, 0x87, 0x84]), lit(':authority', 'bench.example')]))]));
  h2.serverToClient(h2Frame(1, 0x4, 1, Buffer.from([0x88])));
  const dst = Buffer.alloc(CHUNK);
  rows.push({ name: 'copy of each 16 KiB chunk (anchor)', value: pump((c) => { c.copy(dst); }, h2Data, TOTAL), unit: 'MB/s' });
  rows.push({ name: 'h2 DATA frames (16 KiB payload)', value: pump((c) => h2.serverToClient(c), h2Data, TOTAL), unit: 'MB/s', anchor: 'copy of each 16 KiB chunk (anchor)' });
  verify(h2, sink, (fed / h2Data.length) * frames.length * FRAME_PAYLOAD, 'h2');

  // HTTP/1.1 Content-Length body larger than everything fed.
  const h1 = loggerFor('http/1.1', sink);
  h1.clientToServer(Buffer.from('GET /big HTTP/1.1\r\nHost: bench.example\r\n\r\n'));
  h1.serverToClient(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL * 4}\r\n\r\n`));
  const body = Buffer.alloc(64 * 1024 * 1024, 0x62);
  rows.push({ name: 'HTTP/1.1 Content-Length body', value: pump((c) => h1.serverToClient(c), body, TOTAL), unit: 'MB/s', anchor: 'copy of each 16 KiB chunk (anchor)' });
  verify(h1, sink, fed, 'HTTP/1.1 Content-Length');

  // HTTP/1.1 chunked body: 8 KiB chunks, so every 16 KiB slice holds size lines.
  const ch = loggerFor('http/1.1', sink);
  ch.clientToServer(Buffer.from('GET /chunked HTTP/1.1\r\nHost: bench.example\r\n\r\n'));
  ch.serverToClient(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'));
  const piece = Buffer.concat([Buffer.from('2000\r\n'), Buffer.alloc(8192, 0x63), Buffer.from('\r\n')]);
  const chunked = Buffer.concat(Array.from({ length: 8192 }, () => piece));
  rows.push({ name: 'HTTP/1.1 chunked body (8 KiB chunks)', value: pump((c) => ch.serverToClient(c), chunked, TOTAL), unit: 'MB/s', anchor: 'copy of each 16 KiB chunk (anchor)' });
  verify(ch, sink, (fed / piece.length) * 8192, 'HTTP/1.1 chunked');

  // Request rate: small h1 and h2 exchanges, heads parsed and records built.
  const N = 100_000;
  const h1Req = Buffer.from('GET /api/items?id=42&sort=asc HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: Mozilla/5.0 bench\r\nAccept: */*\r\nCookie: a=b\r\n\r\n');
  const h1Resp = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  const r1 = loggerFor('http/1.1', sink);
  sink.length = 0;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { r1.clientToServer(h1Req); r1.serverToClient(h1Resp); }
  rows.push({ name: 'HTTP/1.1 requests (parse + record)', value: N / (Number(process.hrtime.bigint() - t0) / 1e9), unit: 'req/s' });
  if (sink.length !== N || sink.some((r) => r.error !== undefined)) throw new Error(`bench: expected ${N} clean HTTP/1.1 records, got ${sink.length}`);
  sink.length = 0;

  const r2 = loggerFor('h2', sink);
  r2.clientToServer(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0, Buffer.alloc(0))]));
  const reqBlock = Buffer.concat([Buffer.from([0x82, 0x87]), lit(':path', '/api/items?id=42&sort=asc'), lit(':authority', 'bench.example'), lit('user-agent', 'Mozilla/5.0 bench'), lit('accept', '*/*')]);
  const respBlock = Buffer.concat([Buffer.from([0x88]), lit('content-type', 'application/json')]);
  const maxStreams = 2 ** 30;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const sid = (1 + 2 * i) % maxStreams;
    r2.clientToServer(h2Frame(1, 0x5, sid, reqBlock));
    r2.serverToClient(Buffer.concat([h2Frame(1, 0x4, sid, respBlock), h2Frame(0, 0x1, sid, Buffer.from('{}'))]));
  }
  rows.push({ name: 'h2 requests (frames + HPACK + record)', value: N / (Number(process.hrtime.bigint() - t0) / 1e9), unit: 'req/s' });
  if (sink.length !== N || sink.some((r) => r.error !== undefined)) throw new Error(`bench: expected ${N} clean h2 records, got ${sink.length}`);
  return rows;
}

if (require.main === module) {
  benchHttpLog().then((rows) => {
    for (const r of rows) process.stdout.write(`${r.name.padEnd(42)} ${r.value.toFixed(0).padStart(10)} ${r.unit}\n`);
  }, (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
