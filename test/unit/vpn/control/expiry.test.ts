// --expires: a duration from now or an ISO 8601 date, parsed strictly so an
// expiry never means something other than what the admin read.
import { ExpiryError, parseExpiry } from '../../../../vpn/control';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

function errorOf(text: string): string {
  try {
    parseExpiry(text, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(ExpiryError);
    return (err as Error).message;
  }
  throw new Error(`expected ${text} to be rejected`);
}

describe('parseExpiry', () => {
  test.each([
    ['30d', 30 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['90m', 90 * 60_000],
    ['45s', 45_000],
    ['2w', 14 * 86_400_000],
  ])('the duration %s counts from now', (text, ms) => {
    expect(parseExpiry(text, NOW)).toBe(NOW + ms);
  });

  test('a date without a time is midnight UTC at its start', () => {
    expect(parseExpiry('2026-12-31', NOW)).toBe(Date.UTC(2026, 11, 31));
  });

  test.each([
    ['2026-12-31T18:00:00Z', Date.UTC(2026, 11, 31, 18)],
    ['2026-12-31T18:00Z', Date.UTC(2026, 11, 31, 18)],
    ['2026-12-31T18:00:00+01:00', Date.UTC(2026, 11, 31, 17)],
    ['2026-12-31T18:00:00.250-02:30', Date.UTC(2026, 11, 31, 20, 30, 0, 250)],
  ])('the date and time %s is taken with its zone', (text, at) => {
    expect(parseExpiry(text, NOW)).toBe(at);
  });

  test('a time without a zone is refused rather than read in the local zone', () => {
    expect(errorOf('2026-12-31T18:00:00')).toMatch(/needs a zone: add Z \(UTC\) or an offset like \+01:00/);
  });

  test.each(['2026-02-30', '2026-13-01', '2026-12-31T24:00Z', '2026-12-31T18:60Z'])('an impossible date or time (%s) is refused', (text) => {
    expect(errorOf(text)).toMatch(/no such date/);
  });

  test('a zero duration is refused', () => {
    expect(errorOf('0d')).toMatch(/longer than zero/);
  });

  test('an absurdly long duration is refused', () => {
    expect(errorOf('999999999d')).toMatch(/at most 100 years/);
  });

  test.each(['30', 'd', '30 days', '1y', '-5d', 'tomorrow', '31/12/2026', ''])('%j says what is expected', (text) => {
    expect(errorOf(text)).toBe(
      `invalid expiry ${JSON.stringify(text)}: expected a duration like 30d, 12h, 90m (s, m, h, d, w) or an ISO 8601 date like 2026-12-31 (midnight UTC) or 2026-12-31T18:00:00+01:00`,
    );
  });
});
