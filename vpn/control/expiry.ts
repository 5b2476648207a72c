// Device expiry as admins write it: a duration from now (30d, 12h, 90m) or an
// ISO 8601 date. Parsed strictly: "predictable expiry" is what WireGuard
// admins ask for, so nothing is guessed (no local-time dates, no 2026-02-30).

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Far enough for any real device, near enough to stay a valid Date. */
const MAX_DURATION_MS = 100 * 365 * 86_400_000;
const DURATION_RE = /^(\d{1,9})([smhdw])$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-](\d{2}):(\d{2}))?$/;

export const EXPIRY_HELP = 'a duration like 30d, 12h, 90m (s, m, h, d, w) or an ISO 8601 date like 2026-12-31 (midnight UTC) or 2026-12-31T18:00:00+01:00';

export class ExpiryError extends Error {}

/** The expiry instant (ms since the epoch) that `text` names, relative to `now`. */
export function parseExpiry(text: string, now: number): number {
  const fail = (why: string): never => {
    throw new ExpiryError(`invalid expiry ${JSON.stringify(text)}: ${why}`);
  };
  const d = DURATION_RE.exec(text);
  if (d) {
    const ms = Number(d[1]) * UNIT_MS[d[2]];
    if (ms === 0) fail('a duration must be longer than zero');
    if (ms > MAX_DURATION_MS) fail('at most 100 years');
    return now + ms;
  }
  const date = DATE_RE.exec(text);
  if (date) {
    const [y, mo, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    if (!validDate(y, mo, day)) fail('no such date');
    return Date.UTC(y, mo - 1, day);
  }
  const dt = DATETIME_RE.exec(text);
  if (dt) {
    const [y, mo, day, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(dt[i] ?? 0));
    if (!validDate(y, mo, day) || h > 23 || mi > 59 || s > 59) fail('no such date or time');
    if (dt[7] === undefined) fail('a time needs a zone: add Z (UTC) or an offset like +01:00');
    if (dt[8] !== undefined && (Number(dt[8]) > 23 || Number(dt[9]) > 59)) fail('no such UTC offset');
    return Date.parse(text);
  }
  return fail(`expected ${EXPIRY_HELP}`);
}

function validDate(y: number, m: number, d: number): boolean {
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}
