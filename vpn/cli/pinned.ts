// `sightline pinned`: hosts learned as certificate-pinned (written by the
// running concentrator to pinned.json) and the admin's decisions about them
// (written here to pinned-admin.json, re-read by the concentrator within
// PINNED_SYNC_MS). See vpn/pinned/admin.ts for why two files.
import { Command } from 'commander';
import { join } from 'node:path';
import { PinningTracker, type PinnedHost, type PinningMode } from '../../mitm';
import { defaultConfig, loadConfigFile } from '../config';
import { resolveConfigPath, resolveDataDir } from '../config';
import {
  PINNED_FILE, approvePin, normalizePinHost, pinnedAdminPath, readPinnedAdmin, removePin, writePinnedAdmin, type PinDecision, type PinnedAdmin,
} from '../pinned';
import { validateName } from '../control';

interface Globals {
  dataDir?: string;
  config?: string;
}

/** How a (user, host) entry stands under the configured mode. */
type PinStatus = 'active' | 'pending' | 'approved' | 'inactive';

interface PinRow {
  user: string;
  host: string;
  status: PinStatus;
  learned?: { failures: number; pinnedAt: string; until: string };
  approvedAt?: string;
}

const STATUS_TEXT: Record<PinStatus, string> = {
  active: 'ACTIVE (learned; bypassed once the destination proves the name)',
  pending: 'PENDING approval (learned; still inspected until `sightline pinned approve`)',
  approved: 'APPROVED (bypassed once the destination proves the name)',
  inactive: 'INACTIVE (tls.pinning.mode is off)',
};

function context(cmd: Command): { dataDir: string; mode: PinningMode; adminFile: string } {
  const g = cmd.optsWithGlobals<Globals>();
  const dataDir = resolveDataDir(g.dataDir);
  const configPath = resolveConfigPath(g.config, dataDir);
  const config = configPath ? loadConfigFile(configPath).config : defaultConfig();
  return { dataDir, mode: config.tls.pinning.mode, adminFile: pinnedAdminPath(dataDir) };
}

/** What the concentrator last saved, minus what an admin removed since (it applies removals within a second or two). */
function learnedPins(dataDir: string, admin: PinnedAdmin, now: number): PinnedHost[] {
  const tracker = new PinningTracker();
  tracker.load(join(dataDir, PINNED_FILE), now);
  for (const r of admin.removed) tracker.unpin(r.user, r.host, r.at);
  return tracker.list(now);
}

function rows(learned: PinnedHost[], approved: PinDecision[], mode: PinningMode): PinRow[] {
  const byKey = new Map<string, PinRow>();
  const key = (user: string, host: string): string => `${user}\0${host.toLowerCase()}`;
  for (const p of learned) {
    byKey.set(key(p.user, p.host), {
      user: p.user, host: p.host, status: mode === 'off' ? 'inactive' : mode === 'learn' ? 'active' : 'pending',
      learned: { failures: p.failures, pinnedAt: new Date(p.pinnedAt).toISOString(), until: new Date(p.until).toISOString() },
    });
  }
  for (const a of approved) {
    const row = byKey.get(key(a.user, a.host)) ?? { user: a.user, host: a.host, status: 'approved' };
    row.status = mode === 'off' ? 'inactive' : 'approved';
    row.approvedAt = new Date(a.at).toISOString();
    byKey.set(key(a.user, a.host), row);
  }
  return [...byKey.values()].sort((a, b) => a.user.localeCompare(b.user) || a.host.localeCompare(b.host));
}

function printRows(list: PinRow[], mode: PinningMode): void {
  process.stdout.write(`tls.pinning.mode: ${mode}\n`);
  if (list.length === 0) {
    process.stdout.write('no pinned hosts\n');
    return;
  }
  for (const r of list) {
    const details = [STATUS_TEXT[r.status]];
    if (r.learned) details.push(`failures ${r.learned.failures}`, `pinned ${r.learned.pinnedAt}`, `until ${r.learned.until}`);
    if (r.approvedAt) details.push(`approved ${r.approvedAt}`);
    process.stdout.write(`${r.user}\t${r.host}\t${details.join('\t')}\n`);
  }
  if (list.some((r) => r.status === 'pending')) process.stdout.write('approve a pending host with: sightline pinned approve USER HOST\n');
}

function userAndHost(user: string, host: string): { user: string; host: string } {
  validateName('user', user);
  return { user, host: normalizePinHost(host) };
}

export function pinnedCommand(): Command {
  const pinned = new Command('pinned').description('hosts learned as certificate-pinned per user, and admin approvals to bypass inspection for them');
  pinned
    .command('list')
    .description('list learned (active, or pending approval) and approved (user, host) pairs, each marked with its status')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const { dataDir, mode, adminFile } = context(cmd);
      const now = Date.now();
      const admin = readPinnedAdmin(adminFile);
      const list = rows(learnedPins(dataDir, admin, now), admin.approved, mode);
      if (opts.json) process.stdout.write(JSON.stringify({ mode, pins: list }, null, 2) + '\n');
      else printRows(list, mode);
    });
  pinned
    .command('approve <user> <host>')
    .description('let USER\'s TLS flows to HOST bypass inspection (once the destination proves HOST); the running concentrator applies it within 2 s')
    .action((rawUser: string, rawHost: string, _opts: unknown, cmd: Command) => {
      const { user, host } = userAndHost(rawUser, rawHost);
      const { mode, adminFile } = context(cmd);
      const admin = readPinnedAdmin(adminFile);
      if (!approvePin(admin, user, host, Date.now())) {
        process.stderr.write(`${user} ${host}: already approved\n`);
        return;
      }
      writePinnedAdmin(adminFile, admin);
      process.stderr.write(`approved: ${user} ${host}. The running concentrator applies it within 2 s; flows are relayed undecrypted only to destinations that present a valid certificate for ${host}.\n`);
      if (mode === 'off') process.stderr.write('warning: tls.pinning.mode is off, so approvals have no effect until it is learn or approve\n');
    });
  pinned
    .command('remove <user> <host>')
    .description('inspect USER\'s flows to HOST again: drops the approval and what was learned so far (within 2 s)')
    .action((rawUser: string, rawHost: string, _opts: unknown, cmd: Command) => {
      const { user, host } = userAndHost(rawUser, rawHost);
      const { dataDir, adminFile } = context(cmd);
      const now = Date.now();
      const admin = readPinnedAdmin(adminFile);
      const learned = learnedPins(dataDir, admin, now).some((p) => p.user === user && p.host.toLowerCase() === host);
      const approved = admin.approved.some((d) => d.user === user && d.host === host);
      if (!learned && !approved) throw new Error(`${user} ${host} is neither learned nor approved (see: sightline pinned list)`);
      removePin(admin, user, host, now);
      writePinnedAdmin(adminFile, admin);
      process.stderr.write(`removed: ${user} ${host} is inspected again from its next connection (the running concentrator applies it within 2 s)\n`);
    });
  return pinned;
}
