// Memory per connected idle peer, measured inside one concentrator process
// (run with --expose-gc): heap used after forced garbage collection plus
// external memory (Buffers, ArrayBuffers), before and after each step of
// STEP peers that are configured and connected (a WireGuard session up,
// then idle). Each step gives one per-peer delta; the median is reported,
// and a negative delta fails the measurement instead of being averaged away.
// One more step of STEP peers comes first and is not counted: the first
// peers also pay one-time costs (code compiled for the handshake and session
// paths: about 3 KB per peer in a first step of 250), which are not per peer.
// Usage: node --expose-gc peer_memory.js PEERS STEPS [configured]   → prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Concentrator } from '../../vpn/concentrator';
import { provisionDevice } from '../../vpn/control';
import { openDeployment } from '../../vpn/control';
import { PrivateKey } from '../../vpn/protocol';
import { DEFAULT_MAX_OPEN } from '../../vpn/logs/user_log';

const SETTLE_MS = 1000;
const SAMPLES = 5;
const SAMPLE_GAP_MS = 300;
const gc = (globalThis as { gc?: () => void }).gc;

async function afterGc(): Promise<number> {
  if (!gc) throw new Error('run with node --expose-gc');
  // Several rounds: finalizers and weak callbacks free more on the next one.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/**
 * The least of several samples a moment apart: what the peers hold stays in
 * every sample, while work in flight (a log file closing, a timer's buffers)
 * is in some samples only.
 */
async function settledMemory(): Promise<number> {
  let least = Infinity;
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, SAMPLE_GAP_MS));
    least = Math.min(least, await afterGc());
  }
  return least;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Starts `clients` in a child process. The concentrator never roams a peer to
 * a loopback source (a packet loop), so each peer is given its client's
 * loopback port as its configured endpoint before the handshakes start.
 */
interface ClientsInput {
  server: string;
  endpoint: string;
  serverIp: string;
  clients: Array<{ key: string; ip: string }>;
}

function connect(input: ClientsInput, setEndpoint: (key: string, port: number) => void): Promise<{ stop: () => void; connected: number }> {
  const n = input.clients.length;
  const child = spawn(process.execPath, [join(__dirname, 'peer_clients.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.write(`${JSON.stringify(input)}\n`);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const line of lines) {
        const r = JSON.parse(line) as { ports?: number[]; connected?: number };
        if (r.ports !== undefined) {
          r.ports.forEach((port, i) => setEndpoint(input.clients[i].key, port));
          child.stdin.end('go\n');
        } else if (r.connected !== undefined) {
          if (r.connected < n) reject(new Error(`only ${r.connected} of ${n} clients connected`));
          else resolve({ connected: r.connected, stop: () => child.kill('SIGKILL') });
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`clients exited (${code}) before connecting`)));
  });
}

async function main(): Promise<void> {
  const peers = Number(process.argv[2] ?? 1000);
  const steps = Number(process.argv[3] ?? 4);
  // "configured": devices only, no handshake (what an idle, offline employee costs).
  const connectPeers = process.argv[4] !== 'configured';
  const step = Math.floor(peers / steps);
  const dataDir = mkdtempSync(join(tmpdir(), 'sightline-peermem-'));
  const clients: Array<() => void> = [];
  try {
    const port = await freeUdpPort();
    writeFileSync(join(dataDir, 'sightline.yaml'), `listenPort: ${port}\nlistenAddress: 127.0.0.1\ntunnel:\n  ipv4Pool: 10.77.0.0/20\ndns:\n  upstream: ["127.0.0.1:9"]\nadmin:\n  listen: "off"\nlog:\n  level: warn\n`);
    const d = openDeployment({ dataDir });
    const c = await Concentrator.start(d, pino({ level: 'silent' }));
    // Another store connection, as the CLI would be: the running concentrator picks devices up by itself.
    const admin = openDeployment({ dataDir });
    const server = d.serverKey.publicKey().toBase64();
    // A busy concentrator already holds its maximum of open log files: prime them, so the
    // session records of new peers churn that bounded set instead of growing it into the deltas.
    for (let i = 0; i < DEFAULT_MAX_OPEN; i++) c.records.userLog.write(`warmup-${i}`, 'WARMUP', 'session', { event: 'up', endpoint: null }, 'warmup');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const samples = [await settledMemory()];
    // Step 0 is the warm-up (not counted); steps 1..STEPS are measured.
    for (let s = 0; s <= steps; s++) {
      const batch: Array<{ key: string; ip: string }> = [];
      for (let i = 0; i < step; i++) {
        const key = PrivateKey.generate();
        const dev = provisionDevice(admin, { user: `idle-${s}-${i}`, publicKey: key.publicKey().toBase64(), presharedKey: false, endpoint: `127.0.0.1:${port}` });
        batch.push({ key: key.toBase64(), ip: dev.device.ipv4 });
      }
      const want = (s + 1) * step;
      for (let w = 0; c.registry.size < want; w++) {
        if (w > 200) throw new Error(`the concentrator loaded ${c.registry.size} of ${want} devices`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (connectPeers) {
        const setEndpoint = (key: string, clientPort: number): void => {
          const peer = c.device.peer(PrivateKey.fromBase64(key).publicKey());
          if (peer === undefined) throw new Error('a client has no peer on the concentrator');
          peer.endpoint = { address: '127.0.0.1', port: clientPort };
        };
        const conn = await connect({ server, endpoint: `127.0.0.1:${port}`, serverIp: d.layout.serverV4, clients: batch }, setEndpoint);
        clients.push(conn.stop);
      }
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      samples.push(await settledMemory());
    }
    const now = performance.now();
    let up = 0;
    for (const p of c.device.peers()) if (p.hasSession(now)) up++;
    const [warmup, ...deltas] = samples.slice(1).map((m, i) => (m - samples[i]) / step);
    admin.store.close();
    await c.stop();
    process.stdout.write(`${JSON.stringify({ peers: step * steps, connected: up, samples, warmupBytesPerPeer: warmup, deltasBytesPerPeer: deltas })}\n`);
  } finally {
    for (const stop of clients) stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
