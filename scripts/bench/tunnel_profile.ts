// One transfer through the socket-mode tunnel with the concentrator under
// `node --cpu-prof`: a profile of the download, the upload or the close of
// 10,000 idle flows alone, without the anchors and the other rows of the
// tunnel benchmark. Summarise it with profile_top.ts.
// Usage (root): node dist/scripts/bench/tunnel_profile.js download|upload|close PROFILE_DIR
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { missingE2EPrerequisites, sleep } from '../lab/netns';
import { FILE_BYTES, curlSmall, curlTransfer, iperf, openIdleFlows, recoveryAfterClose, type Path } from './tunnel';
import { HTTP_PORT, IDLE_PORT, ORIGIN_VIA_SIGHTLINE, TunnelLab, helper, startAndWait, stopChild, withFdRoom, writeRandomFile } from './tunnel_topology';

const MODES = ['download', 'upload', 'close'] as const;
type Mode = (typeof MODES)[number];

async function run(mode: Mode, profDir: string): Promise<void> {
  const t = new TunnelLab();
  try {
    const file = join(t.tmp, 'file.bin');
    writeRandomFile(file, mode === 'close' ? 1 << 20 : FILE_BYTES);
    t.build();
    const [originCmd, originArgs] = withFdRoom('node', [helper('tunnel_origin'), file, String(HTTP_PORT), String(IDLE_PORT)]);
    await startAndWait(t.lab, t.origin, originCmd, originArgs, 'ready', 10_000);
    for (const port of [5203, 5204]) await startAndWait(t.lab, t.origin, 'iperf3', ['-s', '-p', String(port), '--forceflush'], 'Server listening', 10_000);
    const conc = await t.startConcentrator('profiled', 51820, ['--cpu-prof', '--cpu-prof-dir', profDir]);
    await t.startSightlineClient(conc);
    const p: Path = { label: 'sightline', client: t.sightlineClient, target: ORIGIN_VIA_SIGHTLINE, iperfPorts: { download: 5203, upload: 5204 } };
    if (!(await curlSmall(t, p)).ok) throw new Error('TCP through the concentrator failed');
    if (mode === 'close') {
      const flows = await openIdleFlows(t, p.client, p.target, true);
      await sleep(2000);
      const before = tcpCounters(t);
      const cpu = cpuTimeline(conc.pid);
      const t0 = Date.now();
      await flows.stop();
      process.stdout.write(`opener stopped after ${Date.now() - t0} ms\n`);
      const row = await recoveryAfterClose(t, p);
      process.stdout.write(`${flows.opened} flows opened; ${row.name}: ${row.value} ${row.unit}\n`);
      await sleep(3000);
      process.stdout.write(`concentrator CPU per 250 ms from the close on (ms): ${cpu.stop().join(' ')}\n`);
      const after = tcpCounters(t);
      process.stdout.write(`client TCP counters during the close: ${[...after].map(([k, v]) => `${k} +${v - (before.get(k) ?? 0)}`).join(', ')}\n`);
    } else {
      const before = tcpCounters(t);
      const i = await iperf(t, p, mode);
      const c = await curlTransfer(t, p, mode);
      const after = tcpCounters(t);
      const d = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
      process.stdout.write(`${mode}: iperf3 ${i.ok ? i.value.toFixed(0) : i.reason} Mbit/s, curl ${c.ok ? c.value.toFixed(0) : c.reason} Mbit/s; `
        + `client TCP segments in ${d('TcpInSegs')}, out ${d('TcpOutSegs')}, retransmitted ${d('TcpRetransSegs')}; client UDP receive-buffer drops ${d('UdpRcvbufErrors')}\n`);
    }
    await stopChild(conc.child);
    if (mode !== 'close') process.stdout.write(bulkFlowRecords(conc.dataDir));
  } finally {
    await t.cleanup();
  }
}

/** The per-user log's records of flows that moved over 1 MB: retransmissions and RTOs of the bulk transfers. */
function bulkFlowRecords(dataDir: string): string {
  const dir = join(dataDir, 'logs');
  const lines: string[] = [];
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    if (!f.endsWith('.ndjson')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line.includes('"retransmits"')) continue;
      const r = JSON.parse(line) as { dstPort: number; bytesUp: number; bytesDown: number; retransmits: number; rtoExpirations: number };
      if (r.bytesUp + r.bytesDown < 1e6) continue;
      lines.push(`  flow to port ${r.dstPort}: up ${r.bytesUp} B, down ${r.bytesDown} B, retransmits ${r.retransmits}, RTOs ${r.rtoExpirations}\n`);
    }
  }
  return lines.join('');
}

/** The client namespace's TCP counters worth watching while flows close (nstat, absolute values). */
function tcpCounters(t: TunnelLab): Map<string, number> {
  const out = t.sightlineClient.exec('nstat', ['-az', 'TcpInSegs', 'TcpOutSegs', 'TcpRetransSegs', 'TcpExtTCPSynRetrans', 'TcpExtTCPTimeouts', 'TcpOutRsts', 'TcpInErrs', 'UdpRcvbufErrors', 'UdpSndbufErrors']).stdout;
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && /^\d+$/.test(v ?? '')) m.set(k, Number(v));
  }
  return m;
}

/** CPU time (user + system) the process used in each 250 ms, from /proc/PID/stat. */
function cpuTimeline(pid: number): { stop: () => number[] } {
  const ticksPerMs = 100 / 1000;
  const read = (): number => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const samples: number[] = [];
  let last = read();
  const timer = setInterval(() => {
    const now = read();
    samples.push(Math.round((now - last) / ticksPerMs));
    last = now;
  }, 250);
  return { stop: () => (clearInterval(timer), samples) };
}

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2);
  if (!MODES.includes(mode as Mode) || dir === undefined) {
    process.stderr.write(`usage: tunnel_profile ${MODES.join('|')} PROFILE_DIR\n`);
    process.exit(1);
  }
  const missing = missingE2EPrerequisites(['ip', 'wireguard-go', 'wg', 'wg-quick', 'iperf3', 'curl']);
  if (missing.length > 0) throw new Error(`needs root and ${missing.join(', ')}`);
  const profDir = resolve(dir);
  mkdirSync(profDir, { recursive: true });
  await run(mode as Mode, profDir);
}

main().catch((err: Error) => {
  process.stderr.write(`tunnel_profile failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
