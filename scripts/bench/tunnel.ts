// Tunnel benchmark: bulk TCP through the tunnel and memory per idle flow
// (per peer: the control group, after forced GC), side by side in one run with the anchor DESIGN.md names: wireguard-go
// as the server with kernel forwarding and nftables masquerade. Same client
// (wireguard-go), same origin processes, same file for every path; topology
// in tunnel_topology.ts. Sightline is measured in both egress modes: socket
// (every flow terminated and re-originated) and routed (pass-through packets
// written to a TUN and forwarded by the kernel). Each transfer runs on the
// three paths back to back, so they share the machine's load of the moment.
// Needs root (namespaces); without it the rows say so.
// If TCP through Sightline fails at connect, that is detected in seconds and
// its rows are NaN with the reason.
import { join } from 'node:path';
import { Lab, missingE2EPrerequisites, sleep, waitFor, type Namespace } from '../lab/netns';
import type { BenchRow } from './table';
import { CURL_WRITE_OUT, curlMbps, iperfMbps, type Measured } from './tunnel_parse';
import {
  HTTP_PORT, IDLE_PORT, ORIGIN_VIA_ANCHOR, ORIGIN_VIA_ROUTED, ORIGIN_VIA_SIGHTLINE, TunnelLab,
  execAsync, helper, rssKb, startAndWait, stopChild, withFdRoom, writeRandomFile, type Concentrator,
} from './tunnel_topology';

const FILE_MB = 200;
export const FILE_BYTES = FILE_MB * 1024 * 1024;
const IPERF_SECONDS = 5;
// Cuts a slow transfer short; its rate so far is still reported (partial).
const CURL_MAX_SECONDS = 40;
const IDLE_FLOWS = 10_000;
const IDLE_FLOW_CONCURRENCY = 256;
const IDLE_FLOW_DEADLINE_MS = 40_000;
const RECOVERY_LIMIT_MS = 30_000;
const DGRAM_SIZE = 1420;
const DGRAM_SECONDS = 3;

const A = 'wireguard-go + kernel forwarding';
const S = 'sightline socket egress';
const R = 'sightline routed egress (TUN + kernel forwarding)';
const TCP_NOT_AVAILABLE = 'TCP not available';
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'iperf3', 'nft', 'curl', 'prlimit', 'ping'];

interface Transfer {
  suffix: string;
  /** iperf3 (kept in the pass-through-only run) rather than curl. */
  iperf: boolean;
  unit: string;
  run: (t: TunnelLab, p: Path) => Promise<Measured>;
}

export interface Path {
  label: string;
  client: Namespace;
  target: string;
  iperfPorts: { download: number; upload: number };
}

const TRANSFERS: Transfer[] = [
  { suffix: 'download', iperf: true, unit: `Mbit/s (iperf3 -R, ${IPERF_SECONDS} s)`, run: (t, p) => iperf(t, p, 'download') },
  { suffix: 'upload', iperf: true, unit: `Mbit/s (iperf3, ${IPERF_SECONDS} s)`, run: (t, p) => iperf(t, p, 'upload') },
  { suffix: `curl ${FILE_MB} MB download`, iperf: false, unit: 'Mbit/s (curl)', run: (t, p) => curlTransfer(t, p, 'download') },
  { suffix: `curl ${FILE_MB} MB upload`, iperf: false, unit: 'Mbit/s (curl)', run: (t, p) => curlTransfer(t, p, 'upload') },
];

const transfersFor = (passThroughOnly: boolean): Transfer[] => (passThroughOnly ? TRANSFERS.filter((x) => x.iperf) : TRANSFERS);

const FLOW_MEMORY = `${S}, memory per idle TCP flow`;
const ANCHOR_FLOWS = `${A}, idle TCP flows opened`;

export function benchTunnel(): Promise<BenchRow[]> {
  return runTunnelBench(false);
}

/** Pass-through TCP only (iperf3 both ways) on the three paths: the quick comparison of the egress modes. */
export function benchRouted(): Promise<BenchRow[]> {
  return runTunnelBench(true);
}

async function runTunnelBench(passThroughOnly: boolean): Promise<BenchRow[]> {
  runStarted = Date.now();
  const rows: BenchRow[] = [];
  const missing = missingE2EPrerequisites(TOOLS);
  if (missing.length > 0) {
    rows.push(...skippedRows(`skipped: needs ${missing.join(', ')}`, passThroughOnly));
  } else {
    const t = new TunnelLab();
    // An interrupted run still removes its namespaces and processes.
    const abort = (): void => {
      t.cleanup().then(() => process.exit(130), () => process.exit(130));
    };
    process.once('SIGINT', abort);
    process.once('SIGTERM', abort);
    try {
      await measureTunnels(t, rows, passThroughOnly);
    } catch (err) {
      const msg = (err as Error).message;
      process.stderr.write(`tunnel benchmark aborted: ${msg}\n`);
      rows.push({ name: 'tunnel benchmark aborted', value: NaN, unit: short(msg) });
    } finally {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
      await t.cleanup();
    }
  }
  if (!passThroughOnly) {
    progress('node dgram receive rate');
    rows.push(...(await dgramDiagnostic()));
  }
  progress('done');
  return rows;
}

async function measureTunnels(t: TunnelLab, rows: BenchRow[], passThroughOnly: boolean): Promise<void> {
  progress(passThroughOnly ? 'namespaces, origin' : `namespaces, origin, ${FILE_MB} MB file`);
  const file = join(t.tmp, 'file.bin');
  // The origin serves the file in every run; only the full run transfers it.
  writeRandomFile(file, passThroughOnly ? 1 << 20 : FILE_BYTES);
  t.build();
  const [originCmd, originArgs] = withFdRoom('node', [helper('tunnel_origin'), file, String(HTTP_PORT), String(IDLE_PORT)]);
  await startAndWait(t.lab, t.origin, originCmd, originArgs, 'ready', 10_000);
  // One iperf3 server per test: a test cut short on a broken path must not
  // leave the server busy for the next one.
  for (const port of [5201, 5202, 5203, 5204, 5205, 5206]) {
    await startAndWait(t.lab, t.origin, 'iperf3', ['-s', '-p', String(port), '--forceflush'], 'Server listening', 10_000);
  }

  progress('anchor: wireguard-go server with kernel forwarding');
  await t.startAnchor();
  const anchor: Path = { label: A, client: t.anchorClient, target: ORIGIN_VIA_ANCHOR, iperfPorts: { download: 5201, upload: 5202 } };

  progress('sightline: socket-mode concentrator, peer, client');
  // SIGHTLINE_BENCH_CPU_PROF=DIR: the socket-mode concentrator writes a V8 CPU
  // profile there when it stops (the whole run; tunnel_profile.ts profiles one transfer).
  const profDir = process.env.SIGHTLINE_BENCH_CPU_PROF;
  const conc = await t.startConcentrator('sightline', 51820, profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []);
  await t.startSightlineClient(conc);
  const sightline: Path = { label: S, client: t.sightlineClient, target: ORIGIN_VIA_SIGHTLINE, iperfPorts: { download: 5203, upload: 5204 } };
  const probe = await curlSmall(t, sightline);
  if (!probe.ok) process.stderr.write(`tunnel bench: TCP through Sightline failed (${probe.reason}); its rows are NaN\n`);

  progress('sightline: routed-mode concentrator, peer, client');
  const routedConc = await t.startConcentrator('routed', 51820, [], ['egress:', '  mode: routed', '  nat: masquerade'], t.routedGw);
  await t.startSightlineClient(routedConc, t.routedClient, '10.211.3.1');
  const routed: Path = { label: R, client: t.routedClient, target: ORIGIN_VIA_ROUTED, iperfPorts: { download: 5205, upload: 5206 } };
  const routedProbe = await curlSmall(t, routed);
  if (!routedProbe.ok) process.stderr.write(`tunnel bench: TCP through routed Sightline failed (${routedProbe.reason}); its rows are NaN\n`);

  // Idle flows before bulk transfers, for the same reason as the peers.
  if (!passThroughOnly) {
    if (probe.ok) {
      progress(`sightline: ${IDLE_FLOWS} idle flows`);
      rows.push(await flowMemory(t, sightline, conc));
      rows.push(await recoveryAfterClose(t, sightline));
    } else {
      rows.push({ name: FLOW_MEMORY, value: NaN, unit: `KB/flow (${TCP_NOT_AVAILABLE})` });
    }
  }
  for (const x of transfersFor(passThroughOnly)) {
    progress(`anchor: ${x.suffix}`);
    rows.push(toRow(`${A}, ${x.suffix}`, x.unit, await x.run(t, anchor)));
    for (const [p, ok] of [[sightline, probe.ok], [routed, routedProbe.ok]] as const) {
      if (ok) progress(`${p.label}: ${x.suffix}`);
      const m: Measured = ok ? await x.run(t, p) : { ok: false, reason: TCP_NOT_AVAILABLE };
      rows.push(toRow(`${p.label}, ${x.suffix}`, x.unit, m, `${A}, ${x.suffix}`));
    }
  }

  if (!passThroughOnly) {
    // The idle-flow harness on the anchor path: shows the 10,000 flows open
    // through a gateway that works, whatever Sightline does.
    progress(`anchor: ${IDLE_FLOWS} idle flows (harness check)`);
    const flows = await openIdleFlows(t, anchor.client, anchor.target);
    rows.push({ name: ANCHOR_FLOWS, value: flows.opened, unit: `flows of ${IDLE_FLOWS.toLocaleString('en-US')} in ${(flows.ms / 1000).toFixed(1)} s (harness check)` });
  }
  await stopChild(conc.child);
  await stopChild(routedConc.child);
}

let runStarted = Date.now();
/** Where the run is, on stderr: the whole benchmark takes a few minutes. */
function progress(what: string): void {
  process.stderr.write(`[tunnel ${((Date.now() - runStarted) / 1000).toFixed(1)} s] ${what}\n`);
}

function toRow(name: string, unit: string, m: Measured, anchor?: string): BenchRow {
  if (!m.ok) {
    if (m.reason !== TCP_NOT_AVAILABLE) process.stderr.write(`tunnel bench: ${name}: ${m.reason}\n`);
    return { name, value: NaN, unit: `${unit.split(' ')[0]} (${m.reason === TCP_NOT_AVAILABLE ? m.reason : 'failed: ' + short(m.reason)})` };
  }
  const row: BenchRow = { name, value: m.value, unit: m.note ? `${unit} (${m.note})` : unit };
  // A NaN row keeps no anchor: the table would print "NaNx" as its ratio.
  if (anchor !== undefined) row.anchor = anchor;
  return row;
}

export async function iperf(t: TunnelLab, p: Path, direction: 'download' | 'upload'): Promise<Measured> {
  const port = direction === 'download' ? p.iperfPorts.download : p.iperfPorts.upload;
  // -O 1 leaves slow start out of the average on both paths alike.
  const args = ['-c', p.target, '-p', String(port), '-t', String(IPERF_SECONDS), '-O', '1', '-J', '--connect-timeout', '3000', ...(direction === 'download' ? ['-R'] : [])];
  const r = await execAsync(p.client, 'iperf3', args, (IPERF_SECONDS + 15) * 1000, t.lab);
  return iperfMbps(r.stdout);
}

export async function curlTransfer(t: TunnelLab, p: Path, direction: 'download' | 'upload'): Promise<Measured> {
  const common = ['-s', '-o', '/dev/null', '--connect-timeout', '3', '-m', String(CURL_MAX_SECONDS), '-w', CURL_WRITE_OUT];
  const args = direction === 'download'
    ? [...common, `http://${p.target}:${HTTP_PORT}/file`]
    // No "Expect: 100-continue": its wait is a round trip neither path should pay.
    : [...common, '-H', 'Expect:', '-T', join(t.tmp, 'file.bin'), `http://${p.target}:${HTTP_PORT}/upload`];
  const r = await execAsync(p.client, 'curl', args, (CURL_MAX_SECONDS + 10) * 1000, t.lab);
  return curlMbps(r.stdout, FILE_BYTES, direction, r.code === 28);
}

/** Whether TCP passes at all: a 1 KiB GET, bounded to a few seconds. */
export async function curlSmall(t: TunnelLab, p: Path): Promise<Measured> {
  const r = await execAsync(p.client, 'curl', ['-s', '-o', '/dev/null', '--connect-timeout', '3', '-m', '8', '-w', CURL_WRITE_OUT, `http://${p.target}:${HTTP_PORT}/small`], 15_000, t.lab);
  const m = curlMbps(r.stdout, 1024, 'download');
  return m.ok ? m : { ok: false, reason: TCP_NOT_AVAILABLE };
}

interface IdleFlows {
  opened: number;
  failed: number;
  pending: number;
  ms: number;
  stop: () => Promise<void>;
}

export async function openIdleFlows(t: TunnelLab, client: Namespace, target: string, keep = false): Promise<IdleFlows> {
  const [cmd, args] = withFdRoom('node', [helper('tunnel_idle_flows'), target, String(IDLE_PORT), String(IDLE_FLOWS), String(IDLE_FLOW_CONCURRENCY), String(IDLE_FLOW_DEADLINE_MS)]);
  const opener = await startAndWait(t.lab, client, cmd, args, '"opened"', IDLE_FLOW_DEADLINE_MS + 15_000);
  const line = opener.output().split('\n').find((l) => l.includes('"opened"')) ?? '{}';
  const r = JSON.parse(line) as { opened: number; failed: number; pending: number; ms: number };
  const stop = (): Promise<void> => stopChild(opener.child);
  if (!keep) await stop();
  return { ...r, stop };
}

async function flowMemory(t: TunnelLab, p: Path, conc: Concentrator): Promise<BenchRow> {
  const before = rssKb(conc.pid);
  const flows = await openIdleFlows(t, p.client, p.target, true);
  // Let per-flow timers and buffers settle into their idle state.
  await sleep(2000);
  const after = rssKb(conc.pid);
  await flows.stop();
  if (before === null || after === null) return { name: FLOW_MEMORY, value: NaN, unit: 'KB/flow (the concentrator exited)' };
  if (flows.opened === 0) return { name: FLOW_MEMORY, value: NaN, unit: `KB/flow (no flow opened, ${flows.failed} failed)` };
  const note = flows.opened < IDLE_FLOWS ? `only ${flows.opened} of ${IDLE_FLOWS} opened` : `${IDLE_FLOWS.toLocaleString('en-US')} flows`;
  return { name: FLOW_MEMORY, value: (after - before) / flows.opened, unit: `KB/flow (${note}; target < 64)` };
}

/**
 * Closing 10,000 flows at once is work for the concentrator; the bulk tests
 * start only once a new connection gets through again, and how long that
 * took is itself worth a row.
 */
export async function recoveryAfterClose(t: TunnelLab, p: Path): Promise<BenchRow> {
  const name = `${S}, first new connection after ${IDLE_FLOWS.toLocaleString('en-US')} flows close`;
  const t0 = Date.now();
  while (Date.now() - t0 < RECOVERY_LIMIT_MS) {
    if ((await curlSmall(t, p)).ok) return { name, value: (Date.now() - t0) / 1000, unit: 's (diagnostic)' };
  }
  return { name, value: NaN, unit: `s (none within ${RECOVERY_LIMIT_MS / 1000} s)` };
}

/** Receive rate of the UDP edge on loopback, against a Node flood sender. */
async function dgramDiagnostic(): Promise<BenchRow[]> {
  const lab = new Lab('td'); // only tracks the two processes; no namespaces
  const recvName = 'node dgram receive rate';
  const sendName = 'node dgram send rate';
  try {
    const recv = await startAndWait(lab, null, 'node', [helper('tunnel_dgram'), 'recv', String(DGRAM_SECONDS)], '"port"', 10_000);
    const port = (JSON.parse(recv.output().split('\n')[0]) as { port: number }).port;
    const send = await execAsync(null, 'node', [helper('tunnel_dgram'), 'send', String(port), String(DGRAM_SECONDS + 1), String(DGRAM_SIZE)], (DGRAM_SECONDS + 10) * 1000, lab);
    const got = await waitFor('the receiver to report', () => recv.output().split('\n').find((l) => l.includes('"received"')), 5000);
    const r = JSON.parse(got) as { received: number; seconds: number };
    const s = JSON.parse(send.stdout.trim()) as { sent: number; seconds: number };
    const mbps = (rate: number): string => ((rate * DGRAM_SIZE * 8) / 1e6).toFixed(0);
    const recvRate = r.received / r.seconds;
    const sendRate = s.sent / s.seconds;
    return [
      // Receiving nearly all that was sent means the sender set the pace:
      // the edge can take at least this much, maybe more.
      { name: recvName, value: recvRate, unit: `datagrams/s (${DGRAM_SIZE} B into UdpEdge on loopback, = ${mbps(recvRate)} Mbit/s${recvRate >= 0.97 * sendRate ? ', sender-bound' : ''}; diagnostic)` },
      { name: sendName, value: sendRate, unit: `datagrams/s (the flood feeding it, = ${mbps(sendRate)} Mbit/s)` },
    ];
  } catch (err) {
    return [{ name: recvName, value: NaN, unit: `datagrams/s (failed: ${short((err as Error).message)})` }];
  } finally {
    await lab.cleanup();
  }
}

function skippedRows(reason: string, passThroughOnly: boolean): BenchRow[] {
  const names = [...(passThroughOnly ? [] : [FLOW_MEMORY]), ...transfersFor(passThroughOnly).flatMap((x) => [A, S, R].map((p) => `${p}, ${x.suffix}`))];
  return names.map((name) => ({ name, value: NaN, unit: reason }));
}


function short(msg: string): string {
  const line = msg.split('\n')[0];
  return line.length > 80 ? line.slice(0, 77) + '...' : line;
}
