// The end-to-end test network: a concentrator namespace, an origin namespace
// (UDP echo + DNS server), and one namespace per employee device running the
// official wireguard-go as its client. Addresses exist only inside these
// namespaces.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Lab, run, waitFor, type ExecResult, type Namespace } from '../../scripts/lab/netns';
import { pruneDist } from '../../scripts/prune_dist';

export const ROOT = resolve(__dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'sightline.js');
export const CONC_ORIGIN_V4 = '10.202.0.1';
export const ORIGIN_V4 = '10.202.0.2';
export const CONC_ORIGIN_V6 = 'fd02::1';
export const ORIGIN_V6 = 'fd02::2';
export const POOL_V4 = '10.77.0.0/24';
export const POOL_V6 = 'fd77:1:2::/64';
export const SERVER_V4 = '10.77.0.1';
export const SERVER_V6 = 'fd77:1:2::1';

/** Compiles the project once per jest worker so e2e runs the code under test. */
let built = false;
export function buildOnce(): void {
  if (built) return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  // Type errors are the typecheck's business (npm run typecheck); tsc still
  // emits, and these tests need only the emitted code.
  if (r.status !== 0 && !existsSync(join(ROOT, 'dist', 'vpn', 'cli', 'index.js'))) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  pruneDist(ROOT);
  built = true;
}

export interface Client {
  name: string;
  ns: Namespace;
  ifname: string;
  ipv4: string;
  ipv6: string;
  underlay: string;
  config: string;
}

export interface TopologyOptions {
  /**
   * Routed mode (egress.mode: routed) with this NAT. With `none` the origin
   * gets routes to the pools via the concentrator, as a corporate LAN must.
   */
  routed?: { nat: 'masquerade' | 'none' };
}

export class Topology {
  readonly lab = new Lab('e2e');
  readonly dataDir = mkdtempSync(join(tmpdir(), 'sightline-e2e-'));
  conc!: Namespace;
  origin!: Namespace;
  concProcess: ChildProcess | null = null;
  concOutput = '';
  private clientCount = 0;

  constructor(readonly options: TopologyOptions = {}) {}

  /** Concentrator + origin namespaces, and the concentrator's config file. */
  setup(extraConfig = ''): void {
    buildOnce();
    this.conc = this.lab.namespace('conc');
    this.origin = this.lab.namespace('orig');
    this.lab.link(this.conc, [`${CONC_ORIGIN_V4}/24`, `${CONC_ORIGIN_V6}/64`], this.origin, [`${ORIGIN_V4}/24`, `${ORIGIN_V6}/64`]);
    if (this.options.routed?.nat === 'none') {
      this.origin.execOk('ip', ['route', 'add', POOL_V4, 'via', CONC_ORIGIN_V4]);
      this.origin.execOk('ip', ['-6', 'route', 'add', POOL_V6, 'via', CONC_ORIGIN_V6]);
    }
    this.writeConfig(extraConfig);
  }

  /** (Re)writes the concentrator's sightline.yaml: the test defaults plus `extraConfig`; read at start. */
  writeConfig(extraConfig = ''): void {
    writeFileSync(
      join(this.dataDir, 'sightline.yaml'),
      [
        'listenPort: 51820',
        'tunnel:',
        `  ipv4Pool: ${POOL_V4}`,
        `  ipv6Pool: ${POOL_V6}`,
        'dns:',
        `  upstream: ["${ORIGIN_V4}"]`,
        'log:',
        '  level: debug',
        ...(this.options.routed ? ['egress:', '  mode: routed', `  nat: ${this.options.routed.nat}`] : []),
        extraConfig,
      ].join('\n'),
    );
  }

  sightline(args: string[]): ExecResult {
    return run('node', [BIN, '--data-dir', this.dataDir, ...args]);
  }

  /** `wrap` runs the concentrator under another command, e.g. ['prlimit', '--nofile=256:256']. */
  async startConcentrator(opts: { wrap?: string[] } = {}): Promise<void> {
    // E2E_NODE_ARGS (e.g. "--cpu-prof") lets a developer profile the concentrator under test.
    const nodeArgs = process.env.E2E_NODE_ARGS ? process.env.E2E_NODE_ARGS.split(' ') : [];
    const [cmd, ...args] = [...(opts.wrap ?? []), 'node', ...nodeArgs, BIN, '--data-dir', this.dataDir, 'start'];
    const child = this.conc.spawn(cmd, args);
    this.concProcess = child;
    const since = this.concOutput.length; // a restart appends to the output of the run before
    child.stdout?.on('data', (c: Buffer) => (this.concOutput += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.concOutput += c.toString()));
    await waitFor('concentrator to listen', () => (this.concOutput.slice(since).includes('listening on UDP') ? true : child.exitCode !== null ? fail(`concentrator exited: ${this.concOutput}`) : undefined), 20_000);
  }

  status(): StatusJson {
    return JSON.parse(readFileSync(join(this.dataDir, 'status.json'), 'utf8')) as StatusJson;
  }

  /**
   * Waits for the first line of the concentrator's output (both streams, every run so far)
   * that matches `pattern`, and returns it. Its log is written asynchronously, so a line may
   * still be on its way after the banner or after a synchronous probe: read it through this,
   * not straight from concOutput.
   */
  async outputLine(what: string, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(what, () => this.concOutput.split('\n').find((l) => pattern.test(l)), timeoutMs, 100);
  }

  /** Waits for the next status.json that satisfies pred. */
  async statusWhere(what: string, pred: (s: StatusJson) => boolean, timeoutMs = 10_000): Promise<StatusJson> {
    return waitFor(what, () => {
      try {
        const s = this.status();
        return pred(s) ? s : undefined;
      } catch {
        return undefined;
      }
    }, timeoutMs, 100);
  }

  /**
   * A device namespace linked to the concentrator, with wireguard-go
   * configured from `config`: given as text, made by a function of the
   * concentrator's endpoint as seen from the device, or (null) by `peer add NAME`.
   * For the latter two, `name` is the peer's name in status.json.
   */
  async client(name: string, config: string | null | ((endpoint: string) => string) = null): Promise<Client> {
    const n = ++this.clientCount;
    const ns = this.lab.namespace(`c${n}`);
    const underlay = `10.201.${n}.2`;
    const concSide = `10.201.${n}.1`;
    this.lab.link(this.conc, [`${concSide}/24`], ns, [`${underlay}/24`]);
    const made = typeof config !== 'string';
    const conf = typeof config === 'string' ? config : config === null ? this.addPeer(name, `${concSide}:51820`) : config(`${concSide}:51820`);
    // The running concentrator picks new peers up from the store; wait for it
    // so the client's first handshake is not spent on a peer not yet loaded.
    if (made && this.concProcess !== null) await this.statusWhere(`${name} loaded`, (s) => s.peers.some((p) => p.name === name));
    const ifname = await this.lab.wireguardGo(ns, 'wgc');
    const file = join(this.dataDir, `${fileName(name)}.conf`);
    writeFileSync(file, conf, { mode: 0o600 });
    const stripped = join(this.dataDir, `${fileName(name)}.stripped`);
    writeFileSync(stripped, ns.execOk('wg-quick', ['strip', file]), { mode: 0o600 });
    ns.execOk('wg', ['setconf', ifname, stripped]);
    const addrs = /^Address\s*=\s*(.+)$/m.exec(conf)?.[1].split(',').map((s) => s.trim()) ?? [];
    for (const a of addrs) ns.execOk('ip', ['addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])]);
    ns.execOk('ip', ['link', 'set', ifname, 'mtu', '1420', 'up']);
    ns.execOk('ip', ['route', 'add', 'default', 'dev', ifname]);
    ns.execOk('ip', ['-6', 'route', 'add', 'default', 'dev', ifname]);
    const ipv4 = addrs.find((a) => !a.includes(':'))?.split('/')[0] ?? '';
    const ipv6 = addrs.find((a) => a.includes(':'))?.split('/')[0] ?? '';
    return { name, ns, ifname, ipv4, ipv6, underlay, config: conf };
  }

  /** `device add USER ...`: the client config it prints. */
  addDevice(user: string, endpoint: string, args: string[] = []): string {
    const r = this.sightline(['device', 'add', user, '--endpoint', endpoint, ...args]);
    if (r.code !== 0) throw new Error(`device add ${user} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Re-applies the client's config: wireguard-go forgets its session and handshakes afresh on the next packet. */
  reconnect(c: Client): void {
    c.ns.execOk('wg', ['setconf', c.ifname, join(this.dataDir, `${fileName(c.name)}.stripped`)]);
  }

  /** SIGTERM, as systemd stops it (or SIGKILL: a crash); resolves when the process has exited. */
  async stopConcentrator(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.concProcess;
    if (child === null) return;
    this.concProcess = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // `ip netns exec` runs node in its own place (exec), so this PID is the concentrator's.
    child.kill(signal);
    await exited;
  }

  addPeer(name: string, endpoint: string): string {
    const r = this.sightline(['peer', 'add', name, '--endpoint', endpoint]);
    if (r.code !== 0) throw new Error(`peer add ${name} failed: ${r.stderr}`);
    return r.stdout;
  }

  async cleanup(): Promise<void> {
    await this.lab.cleanup();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export interface StatusJson {
  writtenAt: string;
  publicKey: string;
  peers: Array<{
    name: string; user: string; device: string; publicKey: string; state: 'active' | 'disabled' | 'expired'; stateSince: string;
    endpoint: string | null; session: boolean; lastHandshakeSecondsAgo: number | null; rxBytes: number; txBytes: number; refusedHandshakes: number;
  }>;
  counters: Record<string, Record<string, number>>;
  /** How traffic leaves (vpn/routed/describe.ts EgressStatus). */
  egress?: { mode: 'socket' | 'routed'; interface?: string; nat?: string; nftTable?: string | null };
  /** The running policy and its last reload (vpn/flow_policy/reload.ts). */
  policy?: { generation: number; rules: number; reloads: number; errors: number; lastError: { message: string; at: string } | null; restartNeeded: string[] };
}

/** A peer name (user/device) as a wg-quick config file name. */
function fileName(peerName: string): string {
  return peerName.replace(/\//g, '-');
}

function fail(msg: string): never {
  throw new Error(msg);
}

/** Two pings through the tunnel (either answered is enough); false when none is. */
export function ping(c: Client, target: string, extra: string[] = []): boolean {
  const r = c.ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', ...extra, target], { timeoutMs: 15_000 });
  return r.code === 0;
}

/** A small UDP client run inside a namespace: sends each payload, prints each reply as a JSON line. */
export function udpExchange(ns: Namespace, host: string, port: number, payloads: string[], timeoutMs = 3000): string[] {
  const script = `
    const d = require('dgram'); const s = d.createSocket(${JSON.stringify(host.includes(':') ? 'udp6' : 'udp4')});
    const want = ${JSON.stringify(payloads)}; const got = [];
    s.on('message', (m) => { got.push(m.toString()); if (got.length === want.length) { console.log(JSON.stringify(got)); process.exit(0); } });
    s.connect(${port}, ${JSON.stringify(host)}, () => { for (const p of want) s.send(p); });
    setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, ${timeoutMs});`;
  const out = ns.execOk('node', ['-e', script], { timeoutMs: timeoutMs + 5000 });
  return JSON.parse(out.trim() || '[]') as string[];
}

/** UDP echo server inside a namespace (IPv4 and IPv6), port 7. */
export function startUdpEcho(t: Topology): void {
  const script = `
    const d = require('dgram');
    for (const [type, addr] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
      const s = d.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
      s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
      s.bind(7, addr);
    }`;
  t.origin.spawn('node', ['-e', script]);
}
