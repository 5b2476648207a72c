// Control-plane benchmarks: memory per peer (configured, and connected and
// idle) measured inside a concentrator after forced GC, per-user log write
// rate, what a SIGKILL loses, and `sightline logs` over 1 GiB of rotated logs
// against grep over the same files. Everything on loopback and in temp dirs.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserLog, userLogFiles } from '../../vpn/logs';
import type { BenchRow } from './table';
import { repoRoot } from './tunnel_topology';

const PEERS = 1000;
const PEER_STEPS = 4;
const LOG_USERS = 200;
const LOG_RECORDS = 200_000;
const KILL_RATE = 20_000;
const KILL_TRIALS = 3;
const QUERY_FILES = 16;
const QUERY_FILE_BYTES = 64 * 1024 * 1024;
const DAY = 86_400_000;
const QUERY_T0 = Date.UTC(2026, 10, 1);

const SIGHTLINE = 'sightline';

export async function benchControl(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  progress(`memory per connected idle peer (${PEERS} peers)`);
  rows.push(peerMemory('connected'), peerMemory('configured'));
  progress(`log records written (${LOG_USERS} users)`);
  rows.push(await logWriteRate());
  progress('records lost on SIGKILL');
  rows.push(killLoss());
  progress('logs query over 1 GiB');
  rows.push(...logsQuery());
  progress('done');
  return rows;
}

function progress(what: string): void {
  process.stderr.write(`[control] ${what}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function peerMemory(mode: 'connected' | 'configured'): BenchRow {
  const name = `${SIGHTLINE}, memory per ${mode === 'connected' ? 'connected idle' : 'configured (offline)'} peer`;
  const r = spawnSync(process.execPath, ['--expose-gc', join(__dirname, 'peer_memory.js'), String(PEERS), String(PEER_STEPS), mode], { encoding: 'utf8', timeout: 180_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || line === undefined) throw new Error(`peer memory (${mode}) failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const out = JSON.parse(line) as { connected: number; warmupBytesPerPeer: number; deltasBytesPerPeer: number[] };
  // A negative step means the measurement is broken (GC timing, a leak elsewhere): fail loudly, never average it away.
  const negative = [out.warmupBytesPerPeer, ...out.deltasBytesPerPeer].filter((d) => d < 0);
  if (negative.length > 0) throw new Error(`peer memory (${mode}): a negative delta ${negative[0].toFixed(0)} B/peer; the measurement is not trustworthy`);
  // Every peer, the warm-up step's too, must still have its session at the end, or idle sessions were not what was measured.
  const expected = mode === 'connected' ? PEERS + PEERS / PEER_STEPS : 0;
  if (out.connected !== expected) throw new Error(`peer memory (${mode}): ${out.connected} sessions up at the end, expected ${expected}`);
  const kb = out.deltasBytesPerPeer.map((d) => d / 1024);
  return {
    name,
    value: median(kb),
    unit: `KB/peer (median of ${PEER_STEPS} steps of ${PEERS / PEER_STEPS}, steps ${kb.map((k) => k.toFixed(1)).join('/')}, mean ${(kb.reduce((a, k) => a + k, 0) / kb.length).toFixed(2)}, after an uncounted warm-up step of as many: ${(out.warmupBytesPerPeer / 1024).toFixed(1)}; heap+external after GC; ${out.connected} sessions up; target < 4)`,
  };
}

async function logWriteRate(): Promise<BenchRow> {
  const dir = mkdtempSync(join(tmpdir(), 'sightline-lograte-'));
  try {
    const log = new UserLog({ dataDir: dir });
    const started = performance.now();
    for (let i = 0; i < LOG_RECORDS; i++) {
      log.write(`user${i % LOG_USERS}`, 'PEERKEY', 'flow', { proto: 'tcp', src: '10.77.0.2', srcPort: 40000 + (i % 20000), dst: '192.0.2.10', dstPort: 443, bytesUp: 1234, bytesDown: 56789, durationMs: 420, end: 'fin', retransmits: 0, rtoExpirations: 0 }, 'laptop');
      // A concentrator writes between packets: yield every batch, as its event loop would.
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await log.close();
    const s = (performance.now() - started) / 1000;
    if (log.recordsDropped > 0 || log.writeErrors > 0) throw new Error(`log rate: ${log.recordsDropped} dropped, ${log.writeErrors} errors`);
    return { name: `${SIGHTLINE}, per-user log records written`, value: LOG_RECORDS / s, unit: `records/s (${LOG_RECORDS.toLocaleString('en-US')} flow records, ${LOG_USERS} users, 256 files open, until on disk)` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function killLoss(): BenchRow {
  const losses: number[] = [];
  for (let t = 0; t < KILL_TRIALS; t++) {
    const dir = mkdtempSync(join(tmpdir(), 'sightline-kill-'));
    try {
      const r = spawnSync(process.execPath, [join(__dirname, 'log_kill.js'), dir, String(KILL_RATE), '2', '20'], { encoding: 'utf8', timeout: 30_000 });
      const accepted = Number(r.stdout.trim());
      if (!(accepted > 0)) throw new Error(`log_kill printed ${JSON.stringify(r.stdout)}: ${r.stderr}`);
      let onDisk = 0;
      for (const name of readdirSync(join(dir, 'logs')).filter((n) => n.endsWith('.ndjson'))) {
        for (const f of userLogFiles(join(dir, 'logs'), name.slice(0, -'.ndjson'.length))) {
          for (const line of readFileSync(f.path, 'utf8').split('\n')) if (line.endsWith('}')) onDisk++;
        }
      }
      losses.push(accepted - onDisk);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { name: `${SIGHTLINE}, per-user log records lost on SIGKILL`, value: Math.max(...losses), unit: `records (worst of ${KILL_TRIALS}: ${losses.join('/')}; writing ${KILL_RATE.toLocaleString('en-US')} records/s, killed right after a batch)` };
}

/** 16 rotated files of 64 MiB, one per day, plus a small current file: 1 GiB of one user's records. */
function writeQueryLogs(dataDir: string): { needle: string } {
  const logs = join(dataDir, 'logs');
  mkdirSync(join(logs, 'archive', 'auditee'), { recursive: true });
  const needle = 'exfil.example';
  for (let day = 0; day < QUERY_FILES; day++) {
    const start = QUERY_T0 + day * DAY;
    const name = `${new Date(start).toISOString().slice(0, 10)}T000000Z.001.ndjson`;
    const fd = openSync(join(logs, 'archive', 'auditee', name), 'w', 0o600);
    let written = 0;
    let i = 0;
    const proto = (n: number, t: number): string => JSON.stringify({
      level: 'info', time: new Date(t).toISOString(), type: n % 3 === 0 ? 'dns' : 'flow', user: 'auditee', peer: 'K0mJ8mW3Kq2Gx8z0t6oYk0QwUq7q2e6y8L2p3Z1x0Q4=', device: 'laptop',
      dst: `192.0.2.${n % 250}`, dstPort: 443, host: n % 100_000 === 7 ? needle : `site${n % 5000}.example`, bytesUp: n % 9000, bytesDown: n % 90_000, durationMs: n % 3000, end: 'fin',
    });
    while (written < QUERY_FILE_BYTES) {
      const lines: string[] = [];
      for (let k = 0; k < 2000; k++, i++) lines.push(proto(i, start + Math.floor((i * DAY) / 260_000)));
      const buf = Buffer.from(lines.join('\n') + '\n');
      writeSync(fd, buf);
      written += buf.length;
    }
    closeSync(fd);
  }
  const cur = openSync(join(logs, 'auditee.ndjson'), 'w', 0o600);
  closeSync(cur);
  return { needle };
}

function timed(cmd: string, args: string[]): { s: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0 && !(cmd === 'grep' && r.status === 1)) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { s: (performance.now() - t0) / 1000, out: r.stdout };
}

function logsQuery(): BenchRow[] {
  const dataDir = mkdtempSync(join(tmpdir(), 'sightline-query-'));
  try {
    const { needle } = writeQueryLogs(dataDir);
    const cli = join(repoRoot(), 'bin', 'sightline.js');
    const files = userLogFiles(join(dataDir, 'logs'), 'auditee');
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const gib = (bytes / 2 ** 30).toFixed(2);
    const day8 = new Date(QUERY_T0 + 7 * DAY + 10 * 3_600_000).toISOString();
    const day8end = new Date(QUERY_T0 + 7 * DAY + 11 * 3_600_000).toISOString();
    const window = timed(process.execPath, [cli, '--data-dir', dataDir, 'logs', 'auditee', '--since', day8, '--until', day8end, '--type', 'flow', '--json']);
    const scan = timed(process.execPath, [cli, '--data-dir', dataDir, 'logs', 'auditee', '--grep', needle, '--json']);
    const grep = timed('grep', ['-F', '-h', needle, ...files.map((f) => f.path)]);
    const hits = scan.out.trim().split('\n').filter(Boolean).length;
    if (hits !== grep.out.trim().split('\n').filter(Boolean).length) throw new Error(`logs --grep found ${hits} records, grep found ${grep.out.trim().split('\n').length}`);
    const windowHits = window.out.trim().split('\n').filter(Boolean).length;
    return [
      { name: `${SIGHTLINE} logs, one hour of one day (--since/--until --type)`, value: window.s, unit: `s (${gib} GiB in ${files.length} files; ${windowHits.toLocaleString('en-US')} records; files outside skipped, binary search inside)` },
      { name: `${SIGHTLINE} logs, full scan (--grep)`, value: scan.s, unit: `s (${gib} GiB streamed, ${hits} matches, = ${(bytes / 2 ** 20 / scan.s).toFixed(0)} MiB/s)`, anchor: 'grep -F over the same files' },
      { name: 'grep -F over the same files', value: grep.s, unit: 's (GNU grep, no parsing)' },
    ];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
