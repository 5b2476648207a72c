// Learned exclusions for certificate-pinned clients, per (user, host).
//
// An app that pins its server's key rejects our minted leaf every time; left
// alone it simply stops working for that user. Vendors answer with a learned
// exclusion cache that ages out (DESIGN.md, lessons from the field): after
// `threshold` rejections within `windowMs` the host is pinned for the user
// for `ttlMs`. What a pin does depends on tls.pinning.mode (engine.ts): in
// `learn` it is a bypass candidate at once, in `approve` it waits for an
// admin; either way the flow is relayed raw only after the destination proved
// the name (bypass.ts), since a pin is keyed by a name any client can send.
//
// Sans-IO: every method takes `now` in ms. Persistence is a JSON file so the
// learned list survives a restart; only pins are saved, pending failures are
// transient evidence.

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export const DEFAULT_PIN_THRESHOLD = 3;
export const DEFAULT_PIN_WINDOW_MS = 5 * 60_000;
/** Learned exclusions age out after 12 h (tls.pinning.bypassSeconds). */
export const DEFAULT_PIN_TTL_MS = 12 * 60 * 60_000;
/** Bounds memory against a client that fails for endless distinct hosts. */
export const DEFAULT_MAX_ENTRIES = 100_000;

/** TLS AlertDescription values (RFC 8446 §6.2) that mean "I do not accept your certificate". */
export const ALERT_BAD_CERTIFICATE = 42;
export const ALERT_UNSUPPORTED_CERTIFICATE = 43;
export const ALERT_CERTIFICATE_REVOKED = 44;
export const ALERT_CERTIFICATE_EXPIRED = 45;
export const ALERT_CERTIFICATE_UNKNOWN = 46;
export const ALERT_UNKNOWN_CA = 48;

export interface PinningOptions {
  threshold?: number;
  windowMs?: number;
  ttlMs?: number;
  maxEntries?: number;
}

export interface PinnedHost {
  user: string;
  host: string;
  pinnedAt: number;
  until: number;
  failures: number;
}

export interface FailureOutcome {
  /** Failures counted within the window, this one included. */
  failures: number;
  /** True exactly once: when this failure flipped the host to pinned. */
  flipped: boolean;
}

interface Entry {
  user: string;
  host: string;
  /** Times of recent failures, oldest first, at most `threshold` kept. */
  failures: number[];
  pinnedAt: number | null;
  until: number;
  pinFailures: number;
}

export class PinningError extends Error {}

export class PinningTracker {
  readonly threshold: number;
  readonly windowMs: number;
  readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly entries = new Map<string, Entry>();
  /** Grows whenever a pin is added or removed: the owner saves the list when it changed. */
  version = 0;

  constructor(opts: PinningOptions = {}) {
    this.threshold = opts.threshold ?? DEFAULT_PIN_THRESHOLD;
    this.windowMs = opts.windowMs ?? DEFAULT_PIN_WINDOW_MS;
    this.ttlMs = opts.ttlMs ?? DEFAULT_PIN_TTL_MS;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) throw new PinningError(`pinning threshold must be a positive integer, got ${this.threshold}`);
    if (!(this.windowMs > 0) || !(this.ttlMs > 0)) throw new PinningError('pinning windowMs and ttlMs must be positive');
  }

  /** A client rejected our certificate for `host`. */
  recordFailure(user: string, host: string, now: number): FailureOutcome {
    const entry = this.entry(user, host);
    if (entry.pinnedAt !== null && now < entry.until) return { failures: entry.pinFailures, flipped: false };
    entry.pinnedAt = null;
    entry.failures = entry.failures.filter((t) => now - t < this.windowMs);
    entry.failures.push(now);
    if (entry.failures.length > this.threshold) entry.failures.shift();
    const failures = entry.failures.length;
    if (failures < this.threshold) return { failures, flipped: false };
    entry.pinnedAt = now;
    entry.until = now + this.ttlMs;
    entry.pinFailures = failures;
    entry.failures = [];
    this.version++;
    return { failures, flipped: true };
  }

  /**
   * A client completed the handshake with our certificate and used the
   * connection: pending failures were something else (a closed tab, a flaky
   * network) and are forgotten. An established pin stays until it ages out:
   * one user can run a browser that trusts us and a pinned app on one host.
   */
  recordSuccess(user: string, host: string, now: number): void {
    const key = keyOf(user, host);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.failures = [];
    if (entry.pinnedAt === null || now >= entry.until) this.entries.delete(key);
  }

  isPinned(user: string, host: string, now: number): boolean {
    const entry = this.entries.get(keyOf(user, host));
    return entry !== undefined && entry.pinnedAt !== null && now < entry.until;
  }

  /**
   * Forgets what was learned for (user, host) up to `before` (an admin's
   * "inspect this again", issued at that time): a pin learned later stands.
   */
  unpin(user: string, host: string, before = Infinity): boolean {
    const key = keyOf(user, host);
    const entry = this.entries.get(key);
    if (!entry || (entry.pinnedAt !== null && entry.pinnedAt > before)) return false;
    this.entries.delete(key);
    if (entry.pinnedAt !== null) this.version++;
    return entry.pinnedAt !== null;
  }

  /** Current pins, soonest to expire first; expired ones are dropped. */
  list(now: number): PinnedHost[] {
    const out: PinnedHost[] = [];
    for (const [key, e] of this.entries) {
      if (e.pinnedAt === null) continue;
      if (now >= e.until) {
        if (e.failures.length === 0) this.entries.delete(key);
        else e.pinnedAt = null;
        continue;
      }
      out.push({ user: e.user, host: e.host, pinnedAt: e.pinnedAt, until: e.until, failures: e.pinFailures });
    }
    return out.sort((a, b) => a.until - b.until || a.user.localeCompare(b.user) || a.host.localeCompare(b.host));
  }

  toJSON(now: number): { version: 1; pins: PinnedHost[] } {
    return { version: 1, pins: this.list(now) };
  }

  /** Restores pins from toJSON() output; expired and malformed entries are skipped. Returns how many were loaded. */
  restore(data: unknown, now: number): number {
    if (!isObject(data) || data.version !== 1 || !Array.isArray(data.pins)) throw new PinningError('pinning state: expected {"version":1,"pins":[...]}');
    let loaded = 0;
    for (const p of data.pins as unknown[]) {
      if (!isPin(p) || now >= p.until) continue;
      const entry = this.entry(p.user, p.host);
      entry.pinnedAt = p.pinnedAt;
      entry.until = p.until;
      entry.pinFailures = p.failures;
      loaded++;
    }
    return loaded;
  }

  /** Loads `path` if it exists; a missing file is an empty list. */
  load(path: string, now: number): number {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new PinningError(`cannot read pinning state ${path}: ${(err as Error).message}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new PinningError(`pinning state ${path} is not JSON (${(err as Error).message}); delete it to start over`);
    }
    return this.restore(data, now);
  }

  /** Writes the pins atomically (temp file + rename), mode 0600: it names users and the hosts they visit. */
  save(path: string, now: number): void {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.toJSON(now)) + '\n', { mode: 0o600 });
    renameSync(tmp, path);
  }

  get size(): number {
    return this.entries.size;
  }

  private entry(user: string, host: string): Entry {
    const key = keyOf(user, host);
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry;
    }
    entry = { user, host, failures: [], pinnedAt: null, until: 0, pinFailures: 0 };
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return entry;
  }
}

/** NUL cannot occur in a user name we accept or in a host name, so the key is unambiguous. */
function keyOf(user: string, host: string): string {
  return `${user}\0${host.toLowerCase()}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isPin(p: unknown): p is PinnedHost {
  return isObject(p) && typeof p.user === 'string' && typeof p.host === 'string' && Number.isFinite(p.pinnedAt)
    && Number.isFinite(p.until) && Number.isFinite(p.failures);
}

// ---- what counts as "the client rejected our certificate" ----

export type ClientHandshakeEnd =
  /** The client sent a fatal alert (RFC 8446 §6.2) during our handshake. */
  | { kind: 'alert'; alert: number }
  /** The connection closed (FIN or RST) after our certificate was sent and before the client's Finished. */
  | { kind: 'closed_before_finished' }
  | { kind: 'other'; detail: string };

/**
 * Pinning evidence is only a fatal alert whose RFC 8446 §6.2 meaning is "the
 * certificate you sent is not acceptable to me":
 *   bad_certificate (42), unsupported_certificate (43), certificate_revoked (44),
 *   certificate_expired (45), certificate_unknown (46), unknown_ca (48).
 * That is what every TLS stack sends when its own verification (or a pin
 * check inside the handshake) refuses the leaf: OpenSSL and BoringSSL send
 * unknown_ca or certificate_unknown, Java certificate_unknown, Go
 * bad_certificate.
 *
 * Deliberately not evidence:
 * - a bare close, an RST or a silent close after the handshake: tabs are
 *   closed, networks drop, preconnects are abandoned, and any client can
 *   abort on purpose; learning from that would let anyone flip any name to
 *   "bypass" cheaply. (Clients that verify only after the handshake and then
 *   close without an alert, e.g. node:tls or OkHttp's CertificatePinner, are
 *   therefore never learned: an admin approves or lists them instead.)
 * - handshake_failure (40), decrypt_error (51), illegal_parameter (47),
 *   protocol_version (70), ...: negotiation or crypto failures, not a
 *   verdict on the certificate's trust;
 * - access_denied (49): the certificate was accepted, the identity refused;
 * - bad_certificate_status_response (113): about a stapled OCSP response,
 *   which we never send, not about the certificate;
 * - certificate_required (116) and unrecognized_name (112): sent by servers.
 * An alert proves intent, not honesty: any client can send one. That is why a
 * learned pin alone never relays a flow raw (see bypass.ts).
 */
const REJECTION_ALERTS: ReadonlySet<number> = new Set([
  ALERT_BAD_CERTIFICATE, ALERT_UNSUPPORTED_CERTIFICATE, ALERT_CERTIFICATE_REVOKED, ALERT_CERTIFICATE_EXPIRED, ALERT_CERTIFICATE_UNKNOWN, ALERT_UNKNOWN_CA,
]);
/** OpenSSL reason codes for the received alerts above, as node reports them. */
const ALERT_BY_OPENSSL_CODE: Record<string, number> = {
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: ALERT_BAD_CERTIFICATE,
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: ALERT_UNSUPPORTED_CERTIFICATE,
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: ALERT_CERTIFICATE_REVOKED,
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: ALERT_CERTIFICATE_EXPIRED,
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: ALERT_CERTIFICATE_UNKNOWN,
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: ALERT_UNKNOWN_CA,
};

const ALERT_NAMES: Record<number, string> = {
  [ALERT_BAD_CERTIFICATE]: 'bad_certificate',
  [ALERT_UNSUPPORTED_CERTIFICATE]: 'unsupported_certificate',
  [ALERT_CERTIFICATE_REVOKED]: 'certificate_revoked',
  [ALERT_CERTIFICATE_EXPIRED]: 'certificate_expired',
  [ALERT_CERTIFICATE_UNKNOWN]: 'certificate_unknown',
  [ALERT_UNKNOWN_CA]: 'unknown_ca',
};

/** RFC 8446 §6.2's name for an alert, for records. */
export function alertName(alert: number): string {
  return ALERT_NAMES[alert] ?? `alert_${alert}`;
}

/** The alert a TLS error reports having received from the peer, if it is one of ours. */
export function rejectionAlertOf(code: string | undefined): number | null {
  return (code && ALERT_BY_OPENSSL_CODE[code]) || null;
}

export function isCertificateRejection(end: ClientHandshakeEnd): end is Extract<ClientHandshakeEnd, { kind: 'alert' }> {
  return end.kind === 'alert' && REJECTION_ALERTS.has(end.alert);
}
