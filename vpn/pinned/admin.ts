// Admins' decisions about pinned hosts, in DATA_DIR/pinned-admin.json:
// approvals ("bypass inspection of HOST for USER", what `tls.pinning.mode:
// approve` waits for) and removals ("inspect it again": forget what was
// learned for (USER, HOST) up to that moment).
//
// Two files, one writer each, so neither side can lose the other's update:
// the concentrator alone writes pinned.json (what it learned), the CLI alone
// writes pinned-admin.json (atomically, 0600: it names users and the hosts
// they visit). The running concentrator re-reads this file when it changes
// (vpn/pinned/sync.ts). Not in state.db on purpose: a tiny file is all a
// handful of admin decisions needs, and it is readable with cat.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkHostName } from '../../mitm';
import { writeSecretFile } from '../config';

export const PINNED_FILE = 'pinned.json';
export const PINNED_ADMIN_FILE = 'pinned-admin.json';
/** A removal only matters while a pin learned before it could still be live: bypassSeconds is at most 90 days. */
const REMOVAL_KEEP_MS = 90 * 86_400_000;

export interface PinDecision {
  user: string;
  host: string;
  /** When the admin decided, ms since the epoch. */
  at: number;
}

export interface PinnedAdmin {
  version: 1;
  approved: PinDecision[];
  removed: PinDecision[];
}

export class PinnedAdminError extends Error {}

export const pinnedAdminPath = (dataDir: string): string => join(dataDir, PINNED_ADMIN_FILE);

export function emptyPinnedAdmin(): PinnedAdmin {
  return { version: 1, approved: [], removed: [] };
}

/** A missing file is no decisions; an unreadable or malformed one is an error naming the file. */
export function readPinnedAdmin(file: string): PinnedAdmin {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyPinnedAdmin();
    throw new PinnedAdminError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PinnedAdminError(`${file} is not JSON (${(err as Error).message}); fix it or delete it (that drops every approval)`);
  }
  if (!isObject(data) || data.version !== 1 || !Array.isArray(data.approved) || !Array.isArray(data.removed)) {
    throw new PinnedAdminError(`${file}: expected {"version":1,"approved":[...],"removed":[...]}`);
  }
  return { version: 1, approved: data.approved.filter(isDecision), removed: data.removed.filter(isDecision) };
}

export function writePinnedAdmin(file: string, admin: PinnedAdmin): void {
  writeSecretFile(file, JSON.stringify(admin, null, 1) + '\n');
}

/** Host names compare case-insensitively (RFC 4343); an IP literal is what a flow without SNI is keyed by. */
export function normalizePinHost(host: string): string {
  const lower = host.toLowerCase();
  if (isIP(lower) !== 0) return lower;
  const checked = checkHostName(Buffer.from(lower, 'latin1'));
  if (typeof checked !== 'string') throw new PinnedAdminError(`invalid host ${JSON.stringify(host)}: expected a DNS name as the client sends it in SNI (e.g. api.example.com) or an IP address`);
  return checked;
}

const same = (d: PinDecision, user: string, host: string): boolean => d.user === user && d.host === host;

/** Adds an approval; false when it was already approved. */
export function approvePin(admin: PinnedAdmin, user: string, host: string, now: number): boolean {
  if (admin.approved.some((d) => same(d, user, host))) return false;
  admin.approved.push({ user, host, at: now });
  return true;
}

/** Drops any approval and records the removal (so the concentrator forgets what it learned before `now`); old removals are pruned. */
export function removePin(admin: PinnedAdmin, user: string, host: string, now: number): { wasApproved: boolean } {
  const before = admin.approved.length;
  admin.approved = admin.approved.filter((d) => !same(d, user, host));
  admin.removed = admin.removed.filter((d) => !same(d, user, host) && now - d.at < REMOVAL_KEEP_MS);
  admin.removed.push({ user, host, at: now });
  return { wasApproved: admin.approved.length < before };
}

/** Approvals as a set for the per-flow lookup (mitm PinApprovals). */
export class ApprovedPins {
  private keys = new Set<string>();

  isApproved(user: string, host: string): boolean {
    return this.keys.has(keyOf(user, host.toLowerCase()));
  }

  replace(approved: readonly PinDecision[]): void {
    this.keys = new Set(approved.map((d) => keyOf(d.user, d.host.toLowerCase())));
  }

  get size(): number {
    return this.keys.size;
  }
}

/** NUL occurs in neither a user name nor a host name. */
const keyOf = (user: string, host: string): string => `${user}\0${host}`;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isDecision(d: unknown): d is PinDecision {
  return isObject(d) && typeof d.user === 'string' && typeof d.host === 'string' && Number.isFinite(d.at);
}
