// What `sightline logs` is asked (times, types) and how a record reads as one
// line for people.
import { RECORD_TYPES } from './record_types';

export class LogQueryError extends Error {}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * TIME as ISO 8601 (a date alone is midnight UTC; a time without offset is UTC)
 * or relative to now (15m, 2h, 1d, 1w, 30s): the ISO string records are compared with.
 */
export function parseTime(text: string, option: string, now = Date.now()): string {
  const rel = /^(\d+)([smhdw])$/.exec(text.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNITS[rel[2]]).toISOString();
  const t = text.trim();
  if (ISO_DATE.test(t)) {
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(t) && t.length > 10;
    const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : hasZone ? t : `${t}Z`);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  throw new LogQueryError(`${option} ${JSON.stringify(text)}: expected an ISO 8601 time (2026-12-01, 2026-12-01T09:30:00Z, 2026-12-01T10:30:00+01:00) or a time ago (30s, 15m, 2h, 1d, 1w)`);
}

/** --type: one type or a comma-separated list, each a known record type. */
export function parseTypes(text: string): Set<string> {
  const types = new Set(text.split(',').map((s) => s.trim()).filter(Boolean));
  const known = new Set<string>(RECORD_TYPES);
  const unknown = [...types].filter((t) => !known.has(t));
  if (types.size === 0 || unknown.length > 0) {
    throw new LogQueryError(`--type ${JSON.stringify(text)}: unknown record type ${unknown.map((u) => JSON.stringify(u)).join(', ') || '(none given)'}; known: ${RECORD_TYPES.join(', ')}`);
  }
  return types;
}

const COMMON = new Set(['level', 'time', 'type', 'user', 'peer', 'device']);
/** Fields that say the most, printed first for each type; the rest follow in record order. */
const FIRST: Record<string, string[]> = {
  flow: ['dst', 'dstPort', 'end', 'bytesUp', 'bytesDown', 'durationMs'],
  flow_end: ['host', 'mode', 'result'],
  http: ['method', 'host', 'path', 'status'],
  session: ['event', 'endpoint', 'from', 'reason'],
  dns: ['name', 'qtype', 'rcode', 'answers'],
  policy: ['action', 'host', 'rule', 'reason'],
  egress_denied: ['dst', 'dstPort', 'reason'],
};

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

/** One readable line: time, device, type, then key=value fields (the user is the one asked for). */
export function formatRecord(r: Record<string, unknown>): string {
  const type = String(r.type);
  const keys = Object.keys(r).filter((k) => !COMMON.has(k) && r[k] !== undefined);
  const first = (FIRST[type] ?? []).filter((k) => keys.includes(k));
  const ordered = [...first, ...keys.filter((k) => !first.includes(k))];
  const fields = ordered.map((k) => `${k}=${value(r[k])}`).join(' ');
  return `${String(r.time)}  ${String(r.device ?? '-')}  ${type.padEnd(12)}  ${fields}`.trimEnd();
}
