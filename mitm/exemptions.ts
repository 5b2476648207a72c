// Learned exemptions from inspection that are not pins: servers that demand
// a client certificate (mutual TLS). The concentrator cannot present one, so
// an inspected flow to such a server can only fail; once seen, the (user,
// host) is relayed undecrypted for a while, like a learned pin, and like
// every bypass only after the destination proved the name (bypass.ts).
// Sans-IO: callers pass `now`. Not persisted: after a restart one failed
// flow learns it again.

import { ExpiringLru } from './expiring_lru';
import { DEFAULT_MAX_ENTRIES, DEFAULT_PIN_TTL_MS } from './pinning';

export class MtlsHosts {
  private readonly hosts: ExpiringLru<true>;

  constructor(readonly ttlMs = DEFAULT_PIN_TTL_MS, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.hosts = new ExpiringLru(maxEntries);
  }

  /** The server for `host` asked this user's flow for a client certificate. True when newly learned. */
  learn(user: string, host: string, now: number): boolean {
    const key = keyOf(user, host);
    const known = this.hosts.get(key, now) !== undefined;
    this.hosts.set(key, true, now + this.ttlMs);
    return !known;
  }

  has(user: string, host: string, now: number): boolean {
    return this.hosts.get(keyOf(user, host), now) !== undefined;
  }

  get size(): number {
    return this.hosts.size;
  }
}

/** NUL occurs in neither an accepted user name nor a host name. */
function keyOf(user: string, host: string): string {
  return `${user}\0${host.toLowerCase()}`;
}
