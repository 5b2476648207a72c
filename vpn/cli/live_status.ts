// The running concentrator's status.json, as CLI commands read it: the
// snapshot and how old it is (its mtime is refreshed every second while the
// concentrator runs, even when the content is unchanged).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusSnapshot } from '../concentrator';
import type { PeerStatus } from '../process';

/** Older than this, the concentrator is taken to be stopped. */
export const STALE_MS = 5000;

export interface LiveStatus {
  file: string;
  snapshot: StatusSnapshot;
  text: string;
  ageMs: number;
}

/** null when there is no readable status.json (never started with this data directory). */
export function readLiveStatus(dataDir: string): LiveStatus | null {
  const file = join(dataDir, 'status.json');
  try {
    const text = readFileSync(file, 'utf8');
    const ageMs = Date.now() - statSync(file).mtimeMs;
    return { file, text, ageMs, snapshot: JSON.parse(text) as StatusSnapshot };
  } catch {
    return null;
  }
}

/** Live peer lines by public key, or null when the concentrator is not running. */
export function livePeers(dataDir: string): Map<string, PeerStatus> | null {
  const live = readLiveStatus(dataDir);
  if (live === null || live.ageMs > STALE_MS) return null;
  const byKey = new Map<string, PeerStatus>();
  for (const p of live.snapshot.peers ?? []) if (p.publicKey) byKey.set(p.publicKey, p);
  return byKey;
}
