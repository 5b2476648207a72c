// Inspected HTTPS through the tunnel, side by side in one run with what a
// company would otherwise assemble (DESIGN.md, "Performance targets"):
//   squid:     wireguard-go client → wireguard-go server + kernel forwarding,
//              nftables redirect of 443 to Squid ssl-bump (intercept) → origin
//   mitmproxy: the same gateway, the redirect pointed at mitmdump (transparent)
//   sightline: wireguard-go client → the concentrator (socket egress, TLS
//              inspection with its own CA) → origin
//   sightline, not inspected: the same tunnel and concentrator to the same
//              origin on a port outside tls.inspectPorts (bulk only): what
//              inspection itself costs the download
// Same origin process, same file, same machine; each client trusts only its
// pipeline's CA, each proxy validates upstream against the origin's test root.
// Topology from tunnel_topology.ts, proxies in inspect_proxies.ts. Needs root.
// A pipeline that does not inspect (the client sees the origin's certificate)
// gets NaN rows saying so, detected by a probe in seconds.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingE2EPrerequisites, type ExecResult, type Namespace } from '../lab/netns';
import type { BenchRow } from './table';
import { connsPerSecond, firstVisitExtraMs, markTunnelBound, parseProbe } from './inspect_parse';
import { ORIGIN_INTERMEDIATE_CN, ORIGIN_NAME, makeOriginPki, makeSquidCa, type OriginPki } from './inspect_pki';
import { MITMPROXY_PORT, SQUID_PORT, clearRedirect, setRedirect, startMitmproxy, startSquid } from './inspect_proxies';
import { CURL_WRITE_OUT, curlMbps, type Measured } from './tunnel_parse';
import {
  ORIGIN_VIA_ANCHOR, ORIGIN_VIA_SIGHTLINE, TunnelLab, execAsync, helper, repoRoot, startAndWait, writeRandomFile,
} from './tunnel_topology';

const FILE_MB = 200;
const FILE_BYTES = FILE_MB * 1024 * 1024;
// Bounds on every measurement: a slow pipeline reports its rate so far.
const BULK_MAX_SECONDS = 15;
const ROUNDS = 2;
const CONN_COUNT = 1000;
const CONN_POOL = 8;
const CONN_LIMIT_MS = 5000;
/**
 * Names measured for first visits, in VISIT_BATCHES batches that alternate
 * between the pipelines (control, then each proxy, then the next batch), so
 * a change in the machine's load lands on all of them alike rather than on
 * whichever pipeline was measured last; one run of 15 names per pipeline had
 * the control itself move by 0.9 ms between runs.
 */
const VISIT_NAMES = 30;
const VISIT_BATCHES = 3;
/**
 * First visits to this many other names, unmeasured, right after the probe
 * and long before the measured ones, on every pipeline that is measured for
 * first visits. Without them the concentrator had minted one leaf in its
 * life when its first visits were measured (the connection-rate phase hits
 * its cache), so they ran the minting code in V8's first tiers, while every
 * other code path on the way, repeats included, had long been compiled by
 * that phase: first minus repeat charged the mint with compiling itself, a
 * cost of a concentrator's first minutes only (the origin's warm handshakes,
 * inspect_origin.ts, keep the like out of the control). Measured in the
 * engine: its median mint took 250-300 us in a fresh process and 160-185 us
 * after 100 first visits. Each warm-up visit is a whole first visit
 * (upstream validation, mint, leaf context); the bulk and connection-rate
 * phases that follow leave the pool of prepared contexts full again.
 */
const WARM_NAMES = 64;
const VISIT_LIMIT_MS = 12_000;
const ORIGIN_ISSUER = `Bench Public PKI/${ORIGIN_INTERMEDIATE_CN}`;
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'nft', 'curl', 'ping', 'ss', 'openssl', 'runuser'];
/** Each anchor proxy needs its own tools; without them only its rows are skipped, the others still run. */
const SQUID_TOOLS = ['squid', '/usr/lib/squid/security_file_certgen'];
const MITM_TOOLS = ['mitmdump'];

const DIRECT = 'no inspection (wireguard-go + kernel forwarding)';
const SQUID = 'squid ssl-bump (wireguard-go + nft redirect)';
const MITM = 'mitmproxy transparent (wireguard-go + nft redirect)';
const SIGHTLINE = 'sightline (concentrator, socket egress)';
const SIGHTLINE_PLAIN = `${SIGHTLINE}, not inspected (port 8443)`;
/** The origin's second port: not in the concentrator's tls.inspectPorts, so its TLS passes untouched. */
const PLAIN_PORT = 8443;

const BULK = `HTTPS ${FILE_MB} MB download`;
const CONNS = 'new HTTPS connections/s, warm cert cache';
const VISIT = 'first visit to a new host adds';
const BULK_UNIT = `Mbit/s (curl, ${BULK_MAX_SECONDS} s cap, best of ${ROUNDS} interleaved rounds)`;
const CONNS_UNIT = `conn/s (pool ${CONN_POOL}, no keep-alive or resumption, best of ${ROUNDS} interleaved rounds)`;
const VISIT_UNIT = `ms (TTFB first − faster of 2 repeats, after ${WARM_NAMES} unmeasured first visits to other names`;

interface Pipeline {
  label: string;
  client: Namespace;
  ip: string;
  caFile: string;
  /** Anchor gateway only: the local port 443 is redirected to (null: no redirect). */
  redirectTo?: number | null;
  /** The origin's port (443 unless given). */
  port?: number;
  /** Measured for the bulk download only: the uninspected twin of an inspecting pipeline. */
  bulkOnly?: boolean;
}

interface Results {
  bulk: Measured;
  conns: Measured;
  visit: Measured;
}

export async function benchInspect(): Promise<BenchRow[]> {
  runStarted = Date.now();
  const missing = missingE2EPrerequisites(TOOLS);
  if (missing.length > 0) return skippedRows(`skipped: needs ${missing.join(', ')}`);
  const anchors = { squid: missingTools(SQUID_TOOLS), mitmproxy: missingTools(MITM_TOOLS) };
  const t = new TunnelLab();
  // Squid drops root for the `proxy` user, which cannot enter the lab's 0700 temp dir.
  const squidDir = mkdtempSync(join(tmpdir(), 'sightline-bench-squid-'));
  chmodSync(squidDir, 0o755);
  const abort = (): void => {
    t.cleanup().then(() => process.exit(130), () => process.exit(130));
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    return await measureAll(t, squidDir, anchors);
  } catch (err) {
    const msg = (err as Error).message;
    process.stderr.write(`inspect benchmark aborted: ${msg}\n`);
    return [{ name: 'inspect benchmark aborted', value: NaN, unit: short(msg) }];
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
    await t.cleanup();
    rmSync(squidDir, { recursive: true, force: true });
  }
}

/** Per anchor proxy, the tools it lacks (empty: it runs). */
interface AnchorTools {
  squid: string[];
  mitmproxy: string[];
}

async function measureAll(t: TunnelLab, squidDir: string, anchors: AnchorTools): Promise<BenchRow[]> {
  progress(`certificates, ${FILE_MB} MB file, namespaces, origin`);
  const pki = makeOriginPki(join(t.tmp, 'pki'), VISIT_NAMES, WARM_NAMES);
  const file = join(t.tmp, 'file.bin');
  writeRandomFile(file, FILE_BYTES);
  t.build();
  await startAndWait(t.lab, t.origin, 'node', [helper('inspect_origin'), pki.certDir, ORIGIN_NAME, file, '443'], 'ready', 10_000);
  await startAndWait(t.lab, t.origin, 'node', [helper('inspect_origin'), pki.certDir, ORIGIN_NAME, file, String(PLAIN_PORT)], 'ready', 10_000);
  await t.startAnchor();
  const pipelines = await startPipelines(t, pki, squidDir, anchors);

  // Measurements alternate between pipelines, round after round, so a burst
  // of load from elsewhere on the machine does not land on one pipeline only.
  const select = (p: Pipeline): void => {
    if (p.redirectTo === null) clearRedirect(t.anchorGw);
    else if (p.redirectTo !== undefined) setRedirect(t.anchorGw, t.anchorServerIf, p.redirectTo);
  };
  const res = new Map<string, Results>();
  for (const [label, lacking] of [[SQUID, anchors.squid], [MITM, anchors.mitmproxy]] as const) {
    const skipped: Measured = { ok: false, reason: `skipped: needs ${lacking.join(', ')}` };
    if (lacking.length > 0) res.set(label, { bulk: skipped, conns: skipped, visit: skipped });
  }
  const active: Pipeline[] = [];
  for (const p of pipelines) {
    select(p);
    const verdict = p.label === DIRECT || p.bulkOnly ? { inspected: true, reason: '' } : parseProbe((await client(t, p, ['probe', p.ip, ORIGIN_NAME, p.caFile], 20_000)).stdout, ORIGIN_ISSUER);
    const failed: Measured = { ok: false, reason: verdict.reason };
    res.set(p.label, { bulk: failed, conns: failed, visit: failed });
    if (verdict.inspected) active.push(p);
    else process.stderr.write(`inspect bench: ${p.label}: ${verdict.reason}; its rows are NaN\n`);
  }
  for (const p of active.filter((a) => !a.bulkOnly)) {
    progress(`${p.label}: ${WARM_NAMES} unmeasured first visits`);
    select(p);
    await client(t, p, ['warm', p.ip, p.caFile, ...pki.warmNames], VISIT_LIMIT_MS + 15_000);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const p of active) {
      progress(`${p.label}: bulk, round ${round} of ${ROUNDS}`);
      select(p);
      const r = res.get(p.label) as Results;
      r.bulk = best(round === 1 ? null : r.bulk, await bulk(t, p));
    }
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const p of active.filter((a) => !a.bulkOnly)) {
      progress(`${p.label}: connection rate, round ${round} of ${ROUNDS}`);
      select(p);
      const r = res.get(p.label) as Results;
      const args = ['conns', p.ip, ORIGIN_NAME, p.caFile, String(CONN_COUNT), String(CONN_POOL), String(CONN_LIMIT_MS)];
      r.conns = best(round === 1 ? null : r.conns, connsPerSecond((await client(t, p, args, CONN_LIMIT_MS + 20_000)).stdout));
    }
  }
  const visitOutputs = new Map<string, string[]>();
  const perBatch = Math.ceil(pki.visitNames.length / VISIT_BATCHES);
  for (let b = 0; b < VISIT_BATCHES; b++) {
    const names = pki.visitNames.slice(b * perBatch, (b + 1) * perBatch);
    for (const p of active.filter((a) => !a.bulkOnly)) {
      progress(`${p.label}: first visits, batch ${b + 1} of ${VISIT_BATCHES}`);
      select(p);
      // ORIGIN_NAME was visited in the phases above: two requests to it warm the new client process, unmeasured.
      const out = await client(t, p, ['first', p.ip, p.caFile, String(VISIT_LIMIT_MS), ORIGIN_NAME, ...names], VISIT_LIMIT_MS + 15_000);
      visitOutputs.set(p.label, [...(visitOutputs.get(p.label) ?? []), out.stdout]);
    }
  }
  for (const [label, outputs] of visitOutputs) (res.get(label) as Results).visit = firstVisitExtraMs(outputs);
  progress('done');
  return toRows(res);
}

/** Squid, mitmproxy and the concentrator, all started before anything is measured. */
async function startPipelines(t: TunnelLab, pki: OriginPki, squidDir: string, anchors: AnchorTools): Promise<Pipeline[]> {
  const pipelines: Pipeline[] = [{ label: DIRECT, client: t.anchorClient, ip: ORIGIN_VIA_ANCHOR, caFile: pki.rootCrt, redirectTo: null }];
  if (anchors.squid.length === 0) {
    progress('squid: ssl-bump in intercept mode');
    const squidCa = makeSquidCa(join(t.tmp, 'squid-ca'));
    const hostsFile = join(squidDir, 'hosts');
    writeFileSync(hostsFile, [ORIGIN_NAME, ...pki.visitNames, ...pki.warmNames].map((n) => `${ORIGIN_VIA_ANCHOR} ${n}\n`).join(''));
    await startSquid(t.anchorGw, { dir: squidDir, caCrt: squidCa.crt, caKey: squidCa.key, originRoot: pki.rootCrt, hostsFile });
    pipelines.push({ label: SQUID, client: t.anchorClient, ip: ORIGIN_VIA_ANCHOR, caFile: squidCa.crt, redirectTo: SQUID_PORT });
  }
  if (anchors.mitmproxy.length === 0) {
    progress('mitmproxy: transparent mode');
    const mitm = await startMitmproxy(t.anchorGw, join(t.tmp, 'mitmproxy'), pki.rootCrt);
    pipelines.push({ label: MITM, client: t.anchorClient, ip: ORIGIN_VIA_ANCHOR, caFile: mitm.caCrt, redirectTo: MITMPROXY_PORT });
  }

  progress('sightline: concentrator with TLS inspection, peer, client');
  // SIGHTLINE_BENCH_CPU_PROF=DIR: the concentrator writes a V8 CPU profile there when it stops.
  const profDir = process.env.SIGHTLINE_BENCH_CPU_PROF;
  const conc = await t.startConcentrator('inspect', 51820, profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [], [
    'tls:',
    '  inspectPorts: [443]',
    `  upstreamCaFile: ${JSON.stringify(pki.rootCrt)}`,
    // Neither Squid nor mitmproxy checks revocation; the origin names no OCSP responder anyway.
    '  revocation: "off"',
  ]);
  await t.startSightlineClient(conc);
  const exported = await execAsync(null, 'node', [join(repoRoot(), 'bin', 'sightline.js'), '--data-dir', conc.dataDir, '--config', conc.config, 'ca', 'export'], 30_000, t.lab);
  if (exported.code !== 0) throw new Error(`sightline ca export failed: ${exported.stderr.trim()}`);
  const companyCa = join(t.tmp, 'company-ca.crt');
  writeFileSync(companyCa, exported.stdout);

  pipelines.push({ label: SIGHTLINE, client: t.sightlineClient, ip: ORIGIN_VIA_SIGHTLINE, caFile: companyCa });
  pipelines.push({ label: SIGHTLINE_PLAIN, client: t.sightlineClient, ip: ORIGIN_VIA_SIGHTLINE, caFile: pki.rootCrt, port: PLAIN_PORT, bulkOnly: true });
  return pipelines;
}

function client(t: TunnelLab, p: Pipeline, args: string[], timeoutMs: number): Promise<ExecResult> {
  return execAsync(p.client, 'node', [helper('inspect_client'), ...args], timeoutMs, t.lab);
}

/** The better of two rounds (a higher rate); a failed round never hides a good one. */
function best(a: Measured | null, b: Measured): Measured {
  if (a === null || !a.ok) return a !== null && !b.ok ? a : b;
  if (!b.ok || a.value >= b.value) return a;
  return b;
}

async function bulk(t: TunnelLab, p: Pipeline): Promise<Measured> {
  const port = p.port ?? 443;
  const args = ['--http1.1', '-s', '-o', '/dev/null', '--cacert', p.caFile, '--resolve', `${ORIGIN_NAME}:${port}:${p.ip}`,
    '--connect-timeout', '5', '-m', String(BULK_MAX_SECONDS), '-w', CURL_WRITE_OUT, `https://${ORIGIN_NAME}:${port}/file`];
  const r = await execAsync(p.client, 'curl', args, (BULK_MAX_SECONDS + 10) * 1000, t.lab);
  const m = curlMbps(r.stdout, FILE_BYTES, 'download', r.code === 28);
  return m.ok || r.code === 0 ? m : { ok: false, reason: `curl exit ${r.code}: ${m.reason}` };
}

function toRows(res: Map<string, Results>): BenchRow[] {
  const rows: BenchRow[] = [];
  const get = (label: string): Results => res.get(label) ?? { bulk: missed, conns: missed, visit: missed };
  rows.push(row(`${DIRECT}, ${BULK}`, `${BULK_UNIT}; reference`, get(DIRECT).bulk));
  rows.push(row(`${DIRECT}, ${CONNS}`, `${CONNS_UNIT}; reference`, get(DIRECT).conns));
  // The same measurement where nothing mints: what a first visit costs the
  // client, tunnel and origin themselves (should be about 0).
  rows.push(row(`${DIRECT}, ${VISIT}`, `${VISIT_UNIT}, ${VISIT_NAMES} names; control: nothing mints on this path)`, get(DIRECT).visit));
  for (const label of [SQUID, MITM, SIGHTLINE]) {
    const anchor = label === SQUID ? undefined : SQUID;
    const target = (what: string): string => (label === SIGHTLINE ? `; target ${what}` : '');
    const bulk = markTunnelBound(get(label).bulk, get(DIRECT).bulk);
    rows.push(row(`${label}, ${BULK}`, `${BULK_UNIT}${target('≥ 1.0x squid')}`, bulk, anchor && `${anchor}, ${BULK}`));
    if (label === SIGHTLINE) {
      rows.push(row(`${label}, ${BULK} (vs mitmproxy)`, `${BULK_UNIT}${target('≥ 5x mitmproxy')}`, bulk, `${MITM}, ${BULK}`));
      rows.push(row(`${SIGHTLINE_PLAIN}, ${BULK}`, `${BULK_UNIT}; the same tunnel and origin, TLS passed untouched`, get(SIGHTLINE_PLAIN).bulk));
      rows.push(row(`${label}, ${BULK} (vs not inspected)`, `${BULK_UNIT}${target('≥ 0.9x the same tunnel not inspected')}`, bulk, `${SIGHTLINE_PLAIN}, ${BULK}`));
    }
    const conns = markTunnelBound(get(label).conns, get(DIRECT).conns);
    rows.push(row(`${label}, ${CONNS}`, `${CONNS_UNIT}${target('≥ 1.0x squid')}`, conns, anchor && `${anchor}, ${CONNS}`));
    const visit = aboveControl(get(label).visit, get(DIRECT).visit);
    rows.push(row(`${label}, ${VISIT}`, `${VISIT_UNIT}, ${VISIT_NAMES} names${target('≤ 1 ms above the control')})`, visit, anchor && `${anchor}, ${VISIT}`));
  }
  return rows;
}

/**
 * Notes how much of a first visit's cost is the proxy's: the value minus the
 * no-proxy control. A proxy's first visit includes everything the control's
 * does (its upstream leg is the origin's first visit of the name), so a value
 * below the control is the measurement's noise, said as such rather than
 * printed as a negative cost.
 */
function aboveControl(m: Measured, control: Measured): Measured {
  if (!m.ok || !control.ok) return m;
  const above = m.value - control.value;
  const note = above >= 0 ? `${above.toFixed(2)} ms above the control` : `below the control by ${(-above).toFixed(2)} ms: within the measurement's noise`;
  return { ...m, note: m.note ? `${m.note}; ${note}` : note };
}

const missed: Measured = { ok: false, reason: 'not measured' };

function row(name: string, unit: string, m: Measured, anchor?: string): BenchRow {
  if (!m.ok) return { name, value: NaN, unit: `${unit.split(' ')[0]} (${short(m.reason, 110)})` };
  const r: BenchRow = { name, value: m.value, unit: m.note ? `${unit}; ${m.note}` : unit };
  if (anchor !== undefined) r.anchor = anchor;
  return r;
}

function missingTools(tools: string[]): string[] {
  return tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

function skippedRows(reason: string): BenchRow[] {
  const names = [DIRECT, SQUID, MITM, SIGHTLINE].flatMap((l) => [`${l}, ${BULK}`, `${l}, ${CONNS}`, `${l}, ${VISIT}`]);
  return [...names, `${SIGHTLINE_PLAIN}, ${BULK}`].map((name) => ({ name, value: NaN, unit: reason }));
}

let runStarted = Date.now();
/** Where the run is, on stderr: the group takes a few minutes. */
function progress(what: string): void {
  process.stderr.write(`[inspect ${((Date.now() - runStarted) / 1000).toFixed(1)} s] ${what}\n`);
}

function short(msg: string, max = 80): string {
  const line = msg.split('\n')[0];
  return line.length > max ? line.slice(0, max - 3) + '...' : line;
}
