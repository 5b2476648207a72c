// The edge that changes the host for routed mode: `ip` and `nft` as child
// processes (bounded by a timeout, every failure naming the command and what
// it printed) and the forwarding sysctls through /proc/sys. What was changed
// is written to a state file in the data directory *before* each change, so
// that a concentrator killed at any point (SIGKILL) leaves a record from
// which the next start removes its leftovers: the TUN itself vanishes with
// its file descriptor, the nftables table and the sysctls do not.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FORWARDING_SYSCTLS, NFT_FAMILY, NFT_TABLE, ipCommands, nftRuleset, sysctlPath, type RoutedHostPlan } from './plan';

const COMMAND_TIMEOUT_MS = 10_000;
export const ROUTED_STATE_FILE = 'routed-state.json';

export class HostSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostSetupError';
  }
}

/** Runs one command; returns its stdout or throws a HostSetupError saying which command failed and why. */
export type CommandRunner = (cmd: string, args: string[], input?: string) => string;

const INSTALL_HINT: Record<string, string> = { ip: 'install iproute2', nft: 'install nftables (apt-get install nftables)' };

export const runCommand: CommandRunner = (cmd, args, input) => {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  const shown = `\`${[cmd, ...args].join(' ')}\``;
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOENT') throw new HostSetupError(`routed mode needs the \`${cmd}\` command, which is not installed or not on PATH: ${INSTALL_HINT[cmd] ?? `install ${cmd}`}`);
  if (err?.code === 'ETIMEDOUT') throw new HostSetupError(`${shown} did not finish within ${COMMAND_TIMEOUT_MS / 1000} s`);
  if (err) throw new HostSetupError(`${shown} could not run: ${err.message}`);
  if (r.status !== 0) {
    const said = `${r.stderr ?? ''}`.trim().split('\n').slice(0, 3).join(' / ') || `exit status ${r.status ?? r.signal}`;
    throw new HostSetupError(`${shown} failed: ${said}`);
  }
  return r.stdout ?? '';
};

/** Reads and writes sysctls; /proc/sys by default, a fake in tests. */
export interface SysctlIo {
  read(name: string): string;
  write(name: string, value: string): void;
}

export const procSysctl: SysctlIo = {
  read: (name) => readFileSync(sysctlPath(name), 'utf8').trim(),
  write: (name, value) => {
    try {
      writeFileSync(sysctlPath(name), `${value}\n`);
    } catch (err) {
      throw new HostSetupError(`cannot set ${name}=${value} (${sysctlPath(name)}): ${(err as Error).message}`);
    }
  },
};

/** What a running (or killed) concentrator changed on the host. */
export interface RoutedState {
  pid: number;
  tun: string;
  /** True once the nftables table may exist. */
  nftTable: boolean;
  /** Sysctls this run changed, with the value they had before. */
  sysctls: Record<string, string>;
}

export interface HostIo {
  dataDir: string;
  run: CommandRunner;
  sysctl: SysctlIo;
  /** Whether a process with this PID is a Sightline concentrator still running. */
  isRunning(pid: number): boolean;
}

export function defaultHostIo(dataDir: string): HostIo {
  return { dataDir, run: runCommand, sysctl: procSysctl, isRunning: isSightlineProcess };
}

/** What is on the host now: for `sightline status`. */
export interface HostChanges {
  forwarding: Record<string, { value: string; was: string | null }>;
  nftTable: string | null;
}

export class RoutedHost {
  private state: RoutedState;

  constructor(private readonly io: HostIo, private readonly plan: RoutedHostPlan) {
    this.state = { pid: process.pid, tun: plan.tun, nftTable: false, sysctls: {} };
  }

  /**
   * Configures the TUN (already open), turns forwarding on and installs the
   * nftables table. On a failure, undoes what it did and throws.
   */
  setUp(): HostChanges {
    try {
      this.save();
      for (const args of ipCommands(this.plan)) this.io.run('ip', args);
      const forwarding: HostChanges['forwarding'] = {};
      for (const name of FORWARDING_SYSCTLS) {
        const was = this.io.sysctl.read(name);
        if (was !== '1') {
          this.state.sysctls[name] = was;
          this.save();
          this.io.sysctl.write(name, '1');
        }
        forwarding[name] = { value: '1', was: was === '1' ? null : was };
      }
      this.state.nftTable = true;
      this.save();
      this.io.run('nft', ['-f', '-'], nftRuleset(this.plan));
      return { forwarding, nftTable: `${NFT_FAMILY} ${NFT_TABLE}` };
    } catch (err) {
      // The setup error is what the admin must see; a failing undo is appended to it.
      const undo = this.tearDown();
      if (undo.length > 0 && err instanceof Error) err.message += ` (and while undoing: ${undo.join('; ')})`;
      throw err;
    }
  }

  /** Removes the table, restores the sysctls, deletes the state file. Returns what failed (never throws). */
  tearDown(): string[] {
    const failed = undoChanges(this.io, this.state);
    if (failed.length === 0) removeState(this.io.dataDir);
    return failed;
  }

  private save(): void {
    writeFileSync(join(this.io.dataDir, ROUTED_STATE_FILE), JSON.stringify(this.state) + '\n', { mode: 0o600 });
  }
}

/**
 * At every start, in either mode: if a routed-mode run ended without
 * cleaning up (killed, power loss), its nftables table and sysctls are put
 * back. Throws when that run's process is still alive (two concentrators
 * on one data directory) or when the leftovers cannot be removed.
 */
export function removeRoutedLeftovers(io: HostIo): RoutedState | null {
  const file = join(io.dataDir, ROUTED_STATE_FILE);
  if (!existsSync(file)) return null;
  let state: RoutedState;
  try {
    state = parseState(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HostSetupError(`${file} is not a routed-mode state file (${(err as Error).message}): check \`nft list tables\` and the forwarding sysctls by hand, then delete it`);
  }
  if (state.pid !== process.pid && io.isRunning(state.pid)) {
    throw new HostSetupError(`a concentrator (pid ${state.pid}) is running in routed mode with this data directory (${io.dataDir}); stop it first`);
  }
  const failed = undoChanges(io, state);
  if (failed.length > 0) {
    throw new HostSetupError(`cannot remove what an earlier routed-mode run left on this host: ${failed.join('; ')} (run as root or with CAP_NET_ADMIN, or remove them by hand and delete ${file})`);
  }
  removeState(io.dataDir);
  return state;
}

function undoChanges(io: HostIo, state: RoutedState): string[] {
  const failed: string[] = [];
  if (state.nftTable) {
    try {
      const tables = io.run('nft', ['list', 'tables', NFT_FAMILY]);
      if (new RegExp(`^table ${NFT_FAMILY} ${NFT_TABLE}$`, 'm').test(tables)) io.run('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE]);
    } catch (err) {
      failed.push((err as Error).message);
    }
  }
  for (const [name, value] of Object.entries(state.sysctls)) {
    try {
      io.sysctl.write(name, value);
    } catch (err) {
      failed.push((err as Error).message);
    }
  }
  return failed;
}

function removeState(dataDir: string): void {
  rmSync(join(dataDir, ROUTED_STATE_FILE), { force: true });
}

function parseState(text: string): RoutedState {
  const v = JSON.parse(text) as Partial<RoutedState>;
  const sysctls = v.sysctls ?? {};
  const known = new Set<string>(FORWARDING_SYSCTLS);
  if (typeof v.pid !== 'number' || typeof v.tun !== 'string' || typeof v.nftTable !== 'boolean' || typeof sysctls !== 'object') throw new Error('missing fields');
  // Only the sysctls routed mode sets, to the values a sysctl can have: a tampered file cannot write elsewhere.
  for (const [k, val] of Object.entries(sysctls)) if (!known.has(k) || !/^\d$/.test(val)) throw new Error(`unexpected sysctl ${k}=${String(val)}`);
  return { pid: v.pid, tun: v.tun, nftTable: v.nftTable, sysctls };
}

function isSightlineProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sightline');
  } catch {
    return false;
  }
}
