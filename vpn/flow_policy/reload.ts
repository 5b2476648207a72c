// Hot reload of the policy: on SIGHUP (sightline start) and when the config
// file or one of the admin's category files changes (fs.watch on their
// folders, which also sees editors that save by renaming; debounced). A new
// policy takes effect for new flows; tunnels and existing flows keep theirs.
// An invalid file keeps the running policy: the error, with file and line,
// is logged, counted and shown by `sightline status`.
//
// What a reload applies: `groups` and `policy.*` (rules, categories). Other
// keys take effect at the next start; a reload that finds them changed says
// which (`restartNeeded`). The policy keeps being compiled with the running
// tls.inspectPorts, the ports the data path inspects.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { PolicyHolder, ReloadResult } from '../../policy';
import { loadConfigFile, type Config } from '../config';
import type { Logger } from '../process';

export const RELOAD_DEBOUNCE_MS = 300;

export interface PolicyReloaderOptions {
  holder: PolicyHolder;
  /** The config file; null when running on embedded defaults (nothing to reload). */
  configPath: string | null;
  /** The configuration the concentrator started with. */
  running: Config;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  debounceMs?: number;
  /** Reads and validates the config (default: the one loader, errors with file:line). */
  load?: (path: string) => Config;
}

export interface PolicyReloadStatus {
  /** 1 for the policy loaded at start, +1 per successful reload. */
  generation: number;
  rules: number;
  loadedAt: string;
  reloads: number;
  errors: number;
  /** The last failed reload, while the policy from before it runs. Cleared by a successful one. */
  lastError: { message: string; at: string } | null;
  /** Keys outside groups/policy that differ from the running configuration. */
  restartNeeded: string[];
}

/** Top-level keys a reload applies. */
const RELOADED_KEYS: ReadonlySet<string> = new Set(['groups', 'policy']);

export class PolicyReloader {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly watchedNames = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private readonly state: PolicyReloadStatus;
  private stopped = false;

  constructor(private readonly opts: PolicyReloaderOptions) {
    this.state = { generation: opts.holder.generation, rules: opts.holder.current.rules.length, loadedAt: new Date().toISOString(), reloads: 0, errors: 0, lastError: null, restartNeeded: [] };
  }

  get status(): PolicyReloadStatus {
    return { ...this.state, restartNeeded: [...this.state.restartNeeded] };
  }

  /** Watches the config file and the admin's category files. */
  start(): void {
    this.rewatch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Reads the config again and swaps the policy in when it is whole. Never throws. */
  reload(trigger: string): ReloadResult | null {
    const path = this.opts.configPath;
    if (path === null) {
      this.opts.log.info({ trigger }, 'policy reload: no config file (embedded defaults); nothing to reload');
      return null;
    }
    const load = this.opts.load ?? ((p: string) => loadConfigFile(p).config);
    let changed: string[] = [];
    const result = this.opts.holder.reload(() => {
      const next = load(path);
      changed = changedKeys(this.opts.running, next);
      return { ...next, tls: { ...next.tls, inspectPorts: this.opts.running.tls.inspectPorts } };
    });
    const at = new Date().toISOString();
    if (!result.ok) {
      this.state.errors++;
      this.state.lastError = { message: result.error, at };
      this.opts.log.error({ trigger, error: result.error, generation: result.generation }, 'policy reload failed; the running policy stays');
      return result;
    }
    Object.assign(this.state, { generation: result.generation, rules: result.policy.rules.length, loadedAt: at, lastError: null, restartNeeded: changed });
    this.state.reloads++;
    this.opts.log.info({ trigger, generation: result.generation, rules: result.policy.rules.length }, 'policy reloaded; new flows use it');
    if (changed.length > 0) this.opts.log.warn({ keys: changed }, 'config keys outside groups and policy changed: they take effect at the next start');
    this.rewatch();
    return result;
  }

  /** A file we depend on changed: reload once things settle (editors write in several steps). */
  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload('file');
    }, this.opts.debounceMs ?? RELOAD_DEBOUNCE_MS);
  }

  /** The folders of the config and of every admin category file the running policy read. */
  private rewatch(): void {
    const path = this.opts.configPath;
    if (path === null || this.stopped) return;
    const files = [path, ...this.opts.holder.current.categories.filter((c) => !c.shipped).map((c) => c.file)];
    this.watchedNames.clear();
    for (const f of files) this.watchedNames.add(basename(f));
    const dirs = new Set(files.map((f) => dirname(f)));
    for (const [dir, w] of this.watchers) {
      if (dirs.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          // Without a name (some platforms) any change in the folder may be ours.
          if (name === null || this.watchedNames.has(name.toString())) this.schedule();
        });
        w.on('error', (err) => this.opts.log.warn({ dir, err: err.message }, 'cannot watch for policy changes; SIGHUP still reloads'));
        this.watchers.set(dir, w);
      } catch (err) {
        this.opts.log.warn({ dir, err: (err as Error).message }, 'cannot watch for policy changes; SIGHUP still reloads');
      }
    }
  }
}

/** Top-level keys other than the reloaded ones whose values differ. */
function changedKeys(running: Config, next: Config): string[] {
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  return [...keys].filter((k) => !RELOADED_KEYS.has(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}
