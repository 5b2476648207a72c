// Regenerates test/fixtures/client_hello/*.bin: the raw first bytes that real
// TLS clients send, captured by a plain TCP server on 127.0.0.1 that records
// the first connection until its ClientHello is complete, then closes it.
//
// Run (needs curl, openssl and Debian's chromium on PATH):
//   npx tsc --ignoreConfig --outDir /tmp/capture --rootDir . --target ES2022 --module commonjs \
//     --types node --skipLibCheck scripts/capture_client_hellos.ts &&
//   node /tmp/capture/scripts/capture_client_hellos.js [only-this-fixture-name]
// from the checkout's root.
//
// Only loopback is used: every client is pointed at 127.0.0.1 with a made-up
// name under .test (RFC 6761), so it sends that name as SNI.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

// Run from the checkout's root; the compiled script lives elsewhere.
const FIXTURE_DIR = path.resolve(process.cwd(), 'test', 'fixtures', 'client_hello');
const CAPTURE_TIMEOUT_MS = 20_000;

interface Capture {
  name: string;
  description: string;
  // Starts the client against 127.0.0.1:port; returns a stop function.
  start(port: number): () => void;
}

// Complete when the record-framed handshake payload holds a whole handshake
// message (RFC 8446 §5.1: a message may span several records).
function helloComplete(bytes: Buffer): boolean {
  let off = 0;
  let payload = 0;
  let needed = -1;
  const head: number[] = [];
  while (off + 5 <= bytes.length) {
    const len = bytes.readUInt16BE(off + 3);
    if (off + 5 + len > bytes.length) return false;
    for (let i = 0; i < len && head.length < 4; i++) head.push(bytes[off + 5 + i]);
    payload += len;
    off += 5 + len;
    if (needed < 0 && head.length === 4) needed = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
    if (needed >= 0 && payload >= needed) return true;
  }
  return false;
}

function spawnTool(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): () => void {
  // Own process group so the stop function can end the browser's helpers too.
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: { ...process.env, ...extraEnv } });
  child.on('error', (e) => console.error(`${cmd}: ${e.message}`));
  return () => {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
}

function captureOne(c: Capture): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got: Buffer | null = null;
    let stop: () => void = () => undefined;
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      stop();
      server.close();
      if (err || !got) reject(err ?? new Error(`${c.name}: no bytes`));
      else resolve(got);
    };
    const server = net.createServer((sock) => {
      if (got) {
        sock.destroy();
        return;
      }
      const parts: Buffer[] = [];
      sock.on('data', (d: Buffer) => {
        parts.push(d);
        const all = Buffer.concat(parts);
        if (helloComplete(all)) {
          got = all;
          sock.destroy();
          finish(null);
        }
      });
      sock.on('error', () => undefined);
    });
    const timer = setTimeout(() => finish(new Error(`${c.name}: timed out`)), CAPTURE_TIMEOUT_MS);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      stop = c.start(port);
    });
  });
}

function curl(name: string, extra: string[]): Capture['start'] {
  return (port) =>
    spawnTool('curl', ['-sk', '--max-time', '10', '--resolve', `${name}:${port}:127.0.0.1`, ...extra, `https://${name}:${port}/`]);
}

function openssl(extra: string[]): Capture['start'] {
  return (port) => spawnTool('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...extra]);
}

const CAPTURES: Capture[] = [
  {
    name: 'curl_http1.1',
    description: 'curl 7.88 (OpenSSL 3.0) --http1.1, SNI curl-h1.sightline.test, ALPN http/1.1',
    start: curl('curl-h1.sightline.test', ['--http1.1']),
  },
  {
    name: 'curl_http2',
    description: 'curl 7.88 (OpenSSL 3.0) --http2, SNI curl-h2.sightline.test, ALPN h2,http/1.1',
    start: curl('curl-h2.sightline.test', ['--http2']),
  },
  {
    name: 'openssl_tls12',
    description: 'openssl s_client -tls1_2 -servername openssl-tls12.sightline.test: TLS 1.2 only, no supported_versions',
    start: openssl(['-tls1_2', '-servername', 'openssl-tls12.sightline.test']),
  },
  {
    name: 'openssl_tls13',
    description: 'openssl s_client -tls1_3 -servername openssl-tls13.sightline.test: TLS 1.3 only',
    start: openssl(['-tls1_3', '-servername', 'openssl-tls13.sightline.test']),
  },
  {
    name: 'openssl_no_servername',
    description: 'openssl s_client -connect 127.0.0.1:PORT without -servername: no server_name extension',
    start: openssl([]),
  },
  {
    name: 'openssl_alpn',
    description: 'openssl s_client -servername openssl-alpn.sightline.test -alpn h2,http/1.1',
    start: openssl(['-servername', 'openssl-alpn.sightline.test', '-alpn', 'h2,http/1.1']),
  },
  {
    name: 'node_tls',
    description: 'node:tls.connect (Node 20) servername node.sightline.test, ALPNProtocols h2,http/1.1',
    start: (port) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'node.sightline.test', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false });
      s.on('error', () => undefined);
      return () => s.destroy();
    },
  },
  {
    name: 'chromium',
    description:
      'Debian chromium headless, https://chromium.sightline.test:PORT/ mapped to 127.0.0.1: GREASE, ECH GREASE, X25519MLKEM768 key share, >1500 bytes',
    start: (port) => {
      const profile = mkdtempSync(path.join(tmpdir(), 'chromium-capture-'));
      const stop = spawnTool('chromium', [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        '--host-resolver-rules=MAP * 127.0.0.1',
        `https://chromium.sightline.test:${port}/`,
      ]);
      return () => {
        stop();
        // The killed browser may still be writing its profile; give it a moment.
        setTimeout(() => rmSync(profile, { recursive: true, force: true, maxRetries: 3 }), 500);
      };
    },
  },
];

async function main(): Promise<void> {
  const only = process.argv[2];
  const dir = FIXTURE_DIR;
  mkdirSync(dir, { recursive: true });
  const readme: string[] = [
    '# ClientHello fixtures',
    '',
    'Raw first bytes (TLS records carrying the ClientHello) sent by real clients to a',
    'TCP server on 127.0.0.1. Regenerate with `scripts/capture_client_hellos.ts` (see its header).',
    'Random, session id and key shares differ on every capture; names, ALPN and versions do not.',
    '',
  ];
  for (const c of CAPTURES) {
    if (only && c.name !== only) continue;
    const bytes = await captureOne(c);
    writeFileSync(path.join(dir, `${c.name}.bin`), bytes);
    readme.push(`- \`${c.name}.bin\` (${bytes.length} bytes): ${c.description}`);
    console.log(`${c.name}: ${bytes.length} bytes`);
  }
  if (!only) writeFileSync(path.join(dir, 'README.md'), readme.join('\n') + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
