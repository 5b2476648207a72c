// Network-namespace lab for end-to-end tests and benchmarks: hosts are
// namespaces this process creates (veth links, addresses only inside them),
// processes are tracked by PID, and cleanup removes everything even after a
// failure. Names carry a per-process prefix so parallel runs never collide.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

let counter = 0;

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by timeoutMs). */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
  const r = spawnSync(cmd, args, { input: opts.input, timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

export function runOk(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** What end-to-end tests need on this machine; empty when all is there. */
export function missingE2EPrerequisites(tools: string[] = ['ip', 'wireguard-go', 'wg']): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const t of tools) if (run('sh', ['-c', `command -v ${t}`]).code !== 0) missing.push(t);
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  return missing;
}

export class Namespace {
  constructor(readonly name: string, private readonly lab: Lab) {}

  exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  execOk(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return runOk('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a long-running process inside the namespace; killed by cleanup(). */
  spawn(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    return this.lab.track(spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  }
}

export class Lab {
  readonly prefix: string;
  private readonly namespaces: Namespace[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly wgInterfaces: string[] = [];

  constructor(tag = 'sl') {
    this.prefix = `${tag}${process.pid % 100000}x${counter++}`;
  }

  namespace(short: string): Namespace {
    const ns = new Namespace(`${this.prefix}-${short}`, this);
    runOk('ip', ['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    ns.execOk('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A unique interface name (IFNAMSIZ is 16 including the NUL). */
  ifname(short: string): string {
    const name = `${short}${process.pid % 100000}${counter++}`.slice(0, 15);
    return name;
  }

  /** veth pair between two namespaces with the given "addr/prefix" lists. */
  link(a: Namespace, aAddrs: string[], b: Namespace, bAddrs: string[]): { aIf: string; bIf: string } {
    const aIf = this.ifname('va');
    const bIf = this.ifname('vb');
    runOk('ip', ['link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
    for (const [ns, ifn, addrs] of [[a, aIf, aAddrs], [b, bIf, bAddrs]] as const) {
      for (const addr of addrs) ns.execOk('ip', ['addr', 'add', addr, 'dev', ifn, ...(addr.includes(':') ? ['nodad'] : [])]);
      ns.execOk('ip', ['link', 'set', ifn, 'up']);
    }
    return { aIf, bIf };
  }

  track(child: ChildProcess): ChildProcess {
    this.processes.push(child);
    child.on('error', () => undefined);
    return child;
  }

  /** wireguard-go in a namespace; waits until its control socket exists. */
  async wireguardGo(ns: Namespace, short = 'wg'): Promise<string> {
    const ifn = this.ifname(short);
    const child = ns.spawn('wireguard-go', ['-f', ifn], { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' });
    this.wgInterfaces.push(ifn);
    const deadline = Date.now() + 10_000;
    while (!existsSync(`/var/run/wireguard/${ifn}.sock`)) {
      if (child.exitCode !== null) throw new Error(`wireguard-go ${ifn} exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`wireguard-go ${ifn}: control socket did not appear within 10 s`);
      await sleep(20);
    }
    return ifn;
  }

  async cleanup(): Promise<void> {
    for (const p of this.processes) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    const deadline = Date.now() + 3000;
    for (const p of this.processes) {
      while (p.exitCode === null && p.signalCode === null && Date.now() < deadline) await sleep(20);
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    // `ip netns exec` forwards signals, but a grandchild may linger: kill
    // whatever still runs inside our namespaces, by PID.
    for (const ns of this.namespaces) {
      const pids = run('ip', ['netns', 'pids', ns.name]).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      run('ip', ['netns', 'del', ns.name]);
    }
    for (const ifn of this.wgInterfaces) run('rm', ['-f', `/var/run/wireguard/${ifn}.sock`]);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns a value (not undefined) or the time is up. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
