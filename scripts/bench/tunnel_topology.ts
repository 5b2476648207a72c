// The tunnel benchmark's network, all inside namespaces made here:
//
//   anchor:    wgc (wireguard-go client) --veth 10.211.1.0/24-- wgg (wireguard-go
//              server, ip_forward, nft masquerade of 10.88.0.0/24) --veth
//              10.210.1.0/24-- origin (10.210.1.2)
//   sightline: slc (wireguard-go client) --veth 10.211.2.0/24-- slg (our
//              concentrator, socket egress) --veth 10.210.2.0/24-- origin (10.210.2.2)
//   routed:    rtc (wireguard-go client) --veth 10.211.3.0/24-- rtg (our
//              concentrator, egress.mode routed: TUN, kernel forwarding, its
//              own nft masquerade) --veth 10.210.3.0/24-- origin (10.210.3.2)
//
// One origin namespace serves both gateways: the same processes and the same
// file answer both paths. Tunnel MTU is 1420 on every WireGuard interface.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { vmRssKb } from './tunnel_parse';
import { Lab, sleep, waitFor, type ExecResult, type Namespace } from '../lab/netns';

export const ORIGIN_VIA_ANCHOR = '10.210.1.2';
export const ORIGIN_VIA_SIGHTLINE = '10.210.2.2';
export const ORIGIN_VIA_ROUTED = '10.210.3.2';
export const HTTP_PORT = 8080;
export const IDLE_PORT = 9000;
const ANCHOR_TUNNEL = '10.88.0.0/24';
const ANCHOR_SERVER_TUNNEL = '10.88.0.1';
const ANCHOR_CLIENT_TUNNEL = '10.88.0.2';
const SIGHTLINE_SERVER_TUNNEL = '10.77.0.1';
const WG_PORT = 51820;
const TUNNEL_MTU = '1420';
// Room for 10,000 flows plus the process's own descriptors.
const FDS_NEEDED = 12_000;

/**
 * The command line that gives a process holding one socket per flow room for
 * 10,000 flows. Node raises its soft limit to the hard one by itself, so
 * prlimit is used only when the hard limit is too low (raising it needs
 * CAP_SYS_RESOURCE, which containers often lack).
 */
export function withFdRoom(cmd: string, args: string[]): [string, string[]] {
  const m = /^Max open files\s+\d+\s+(\d+|unlimited)/m.exec(readText('/proc/self/limits'));
  const hard = m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  return hard >= FDS_NEEDED ? [cmd, args] : ['prlimit', [`--nofile=${FDS_NEEDED}:${FDS_NEEDED}`, cmd, ...args]];
}

/** The repository root (holds package.json), from src or dist alike. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** A compiled helper of this folder (the benchmark runs from dist/). */
export function helper(name: string): string {
  return join(__dirname, `${name}.js`);
}

/**
 * Runs a command to completion without blocking the event loop, so the pipes
 * of long-running children (the concentrator's log) keep draining meanwhile.
 */
export function execAsync(ns: Namespace | null, cmd: string, args: string[], timeoutMs: number, lab: Lab): Promise<ExecResult> {
  const child = ns === null ? lab.track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })) : ns.spawn(cmd, args);
  child.stdin?.end();
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running child and everything it printed so far. */
export interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Spawns (in a namespace, or on the host when ns is null) and waits for `ready` in its output. */
export async function startAndWait(lab: Lab, ns: Namespace | null, cmd: string, args: string[], ready: string, timeoutMs: number): Promise<Started> {
  const child = ns === null ? lab.track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })) : ns.spawn(cmd, args);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-65536)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-65536)));
  await waitFor(`${cmd} ${args.join(' ')} to print "${ready}"`, () => {
    if (out.includes(ready)) return true;
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}: ${out.trim().slice(-500)}`);
    return undefined;
  }, timeoutMs);
  return { child, output: () => out };
}

/** Ends one child we started, by its PID, and waits until it is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const deadline = Date.now() + 3000;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(20);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A file of pseudo-random bytes, so no layer can win by compressing it. */
export function writeRandomFile(file: string, bytes: number): void {
  const chunk = Buffer.alloc(1 << 20);
  const fd = openSync(file, 'w', 0o600);
  try {
    for (let left = bytes; left > 0; left -= chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(left, chunk.length));
  } finally {
    closeSync(fd);
  }
}

/** VmRSS of a process in KiB, or null when it is gone. */
export function rssKb(pid: number): number | null {
  return vmRssKb(readText(`/proc/${pid}/status`));
}

export interface Concentrator extends Started {
  pid: number;
  dataDir: string;
  config: string;
}

export class TunnelLab {
  readonly lab = new Lab('tb');
  readonly tmp = mkdtempSync(join(tmpdir(), 'sightline-bench-'));
  origin!: Namespace;
  anchorGw!: Namespace;
  anchorClient!: Namespace;
  sightlineGw!: Namespace;
  sightlineClient!: Namespace;
  routedGw!: Namespace;
  routedClient!: Namespace;
  /** The anchor's wireguard-go server interface (set by startAnchor). */
  anchorServerIf = '';
  private anchorOriginIf = '';

  /** Namespaces and veth links of both paths. */
  build(): void {
    this.origin = this.lab.namespace('orig');
    this.anchorGw = this.lab.namespace('wgg');
    this.anchorClient = this.lab.namespace('wgc');
    this.sightlineGw = this.lab.namespace('slg');
    this.sightlineClient = this.lab.namespace('slc');
    this.routedGw = this.lab.namespace('rtg');
    this.routedClient = this.lab.namespace('rtc');
    this.anchorOriginIf = this.lab.link(this.anchorGw, ['10.210.1.1/24'], this.origin, [`${ORIGIN_VIA_ANCHOR}/24`]).aIf;
    this.lab.link(this.sightlineGw, ['10.210.2.1/24'], this.origin, [`${ORIGIN_VIA_SIGHTLINE}/24`]);
    this.lab.link(this.anchorClient, ['10.211.1.2/24'], this.anchorGw, ['10.211.1.1/24']);
    this.lab.link(this.sightlineClient, ['10.211.2.2/24'], this.sightlineGw, ['10.211.2.1/24']);
    this.lab.link(this.routedGw, ['10.210.3.1/24'], this.origin, [`${ORIGIN_VIA_ROUTED}/24`]);
    this.lab.link(this.routedClient, ['10.211.3.2/24'], this.routedGw, ['10.211.3.1/24']);
  }

  /** The wireguard-go server with kernel forwarding and its client, handshake done. */
  async startAnchor(): Promise<void> {
    const [serverKey, serverPub] = this.keyPair('anchor-server');
    const [clientKey, clientPub] = this.keyPair('anchor-client');
    const server = await this.lab.wireguardGo(this.anchorGw, 'wgs');
    this.anchorServerIf = server;
    this.anchorGw.execOk('wg', ['set', server, 'listen-port', String(WG_PORT), 'private-key', serverKey, 'peer', clientPub, 'allowed-ips', `${ANCHOR_CLIENT_TUNNEL}/32`]);
    this.anchorGw.execOk('ip', ['addr', 'add', `${ANCHOR_SERVER_TUNNEL}/24`, 'dev', server]);
    this.anchorGw.execOk('ip', ['link', 'set', server, 'mtu', TUNNEL_MTU, 'up']);
    this.anchorGw.execOk('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    this.anchorGw.execOk('nft', ['-f', '-'], {
      input: `table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n  ip saddr ${ANCHOR_TUNNEL} oifname "${this.anchorOriginIf}" masquerade\n }\n}\n`,
    });
    const client = await this.lab.wireguardGo(this.anchorClient, 'wgc');
    this.anchorClient.execOk('wg', ['set', client, 'private-key', clientKey, 'peer', serverPub, 'endpoint', `10.211.1.1:${WG_PORT}`, 'allowed-ips', '0.0.0.0/0']);
    this.clientInterfaceUp(this.anchorClient, client, [`${ANCHOR_CLIENT_TUNNEL}/32`]);
    await this.pingThrough(this.anchorClient, ORIGIN_VIA_ANCHOR, 'the origin through wireguard-go + kernel forwarding');
  }

  /**
   * Our concentrator on `port` with its own data directory; waits until it
   * listens. `extraConfig` lines are appended to its YAML (top-level keys the
   * base config does not set, such as `tls:`). `gw` is the namespace it runs
   * in (the socket-mode gateway by default).
   */
  async startConcentrator(name: string, port: number, nodeFlags: string[] = [], extraConfig: string[] = [], gw: Namespace = this.sightlineGw): Promise<Concentrator> {
    const dataDir = join(this.tmp, name);
    const config = join(this.tmp, `${name}.yaml`);
    writeFileSync(config, [
      `listenPort: ${port}`,
      'tunnel:',
      // A /16 so the idle-peer measurement can lease 1,000 addresses.
      '  ipv4Pool: 10.77.0.0/16',
      '  ipv6Pool: fd77:1:2::/64',
      'dns:',
      `  upstream: ["${ORIGIN_VIA_SIGHTLINE}"]`,
      'tcp:',
      // One benchmark user opens the 10,000 idle flows DESIGN.md asks one
      // concentrator to hold; the per-user defaults (4096 flows, 200 SYN/s)
      // are policy for real users and would cap or slow that down.
      `  maxFlowsPerUser: ${FDS_NEEDED}`,
      '  maxSynPerSecond: 100000',
      'log:',
      // Quiet: a log line per flow would measure the logger, not the path.
      '  level: warn',
      ...extraConfig,
      '',
    ].join('\n'));
    const [cmd, args] = withFdRoom('node', [...nodeFlags, join(repoRoot(), 'bin', 'sightline.js'), '--data-dir', dataDir, '--config', config, 'start']);
    const started = await startAndWait(this.lab, gw, cmd, args, 'listening on UDP', 20_000);
    if (started.child.pid === undefined) throw new Error('concentrator has no PID');
    return { ...started, pid: nodePid(started.child.pid), dataDir, config };
  }

  /**
   * The Sightline client: a peer made with `sightline peer add`, configured
   * into wireguard-go in `client`, reaching the concentrator at `endpointIp`.
   */
  async startSightlineClient(conc: Concentrator, client: Namespace = this.sightlineClient, endpointIp = '10.211.2.1'): Promise<void> {
    const add = await execAsync(null, 'node', [join(repoRoot(), 'bin', 'sightline.js'), '--data-dir', conc.dataDir, '--config', conc.config, 'peer', 'add', 'bench', '--endpoint', `${endpointIp}:${WG_PORT}`], 30_000, this.lab);
    if (add.code !== 0) throw new Error(`sightline peer add failed: ${add.stderr.trim()}`);
    await waitFor('the concentrator to load the benchmark peer', () => (statusPeers(conc.dataDir).includes('bench') ? true : undefined), 10_000, 100);
    const conf = join(this.tmp, `${client.name}.conf`);
    writeFileSync(conf, add.stdout, { mode: 0o600 });
    const stripped = join(this.tmp, `${client.name}.stripped`);
    writeFileSync(stripped, client.execOk('wg-quick', ['strip', conf]), { mode: 0o600 });
    const ifname = await this.lab.wireguardGo(client, 'slc');
    client.execOk('wg', ['setconf', ifname, stripped]);
    const addrs = /^Address\s*=\s*(.+)$/m.exec(add.stdout)?.[1].split(',').map((s) => s.trim()) ?? [];
    this.clientInterfaceUp(client, ifname, addrs);
    await this.pingThrough(client, SIGHTLINE_SERVER_TUNNEL, 'the concentrator through the tunnel');
  }

  async cleanup(): Promise<void> {
    await this.lab.cleanup();
    rmSync(this.tmp, { recursive: true, force: true });
  }

  private keyPair(name: string): [string, string] {
    const key = this.anchorGw.execOk('wg', ['genkey']).trim();
    const file = join(this.tmp, `${name}.key`);
    writeFileSync(file, key + '\n', { mode: 0o600 });
    return [file, this.anchorGw.execOk('wg', ['pubkey'], { input: key }).trim()];
  }

  private clientInterfaceUp(ns: Namespace, ifname: string, addrs: string[]): void {
    for (const a of addrs) ns.execOk('ip', ['addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])]);
    ns.execOk('ip', ['link', 'set', ifname, 'mtu', TUNNEL_MTU, 'up']);
    ns.execOk('ip', ['route', 'add', 'default', 'dev', ifname]);
  }

  private async pingThrough(ns: Namespace, target: string, what: string): Promise<void> {
    const r = await execAsync(ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', target], 15_000, this.lab);
    if (!/ [1-9]\d* received/.test(r.stdout)) throw new Error(`no ping reply from ${what} (${target}): ${r.stdout.trim().split('\n').pop() ?? ''}`);
  }
}

/** Names of the peers in a running concentrator's status.json. */
export function statusPeers(dataDir: string): string[] {
  try {
    const s = JSON.parse(readFileSync(join(dataDir, 'status.json'), 'utf8')) as { peers?: Array<{ name: string }> };
    return (s.peers ?? []).map((p) => p.name);
  } catch {
    return [];
  }
}

/**
 * `ip netns exec` and `prlimit` exec their command, so the PID we spawned is
 * node's; follow children anyway in case a wrapper forked instead.
 */
function nodePid(pid: number): number {
  let current = pid;
  for (let depth = 0; depth < 3; depth++) {
    const comm = readText(`/proc/${current}/comm`).trim();
    if (comm === 'node') return current;
    const child = readText(`/proc/${current}/task/${current}/children`).trim().split(/\s+/)[0];
    if (!child) break;
    current = Number(child);
  }
  throw new Error(`cannot find the node process of PID ${pid}`);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
