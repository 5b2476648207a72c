// routing.exclude -> AllowedIPs: the complement of the exclusions in
// 0.0.0.0/0 and ::/0, as the fewest prefixes, covering it exactly.
import { IpCidr } from '../../../netstack/wire';
import { allowedIpsFor } from '../../../policy';
import { seededRandom } from '../../../scripts/lab/prng';

/** [start, end) of a prefix as bigints, computed independently of routing.ts. */
function range(p: string): [bigint, bigint, 4 | 6] {
  const c = IpCidr.parse(p);
  const bits = c.family === 4 ? 32 : 128;
  const start = BigInt(`0x${c.network.bytes.toString('hex')}`);
  return [start, start + (1n << BigInt(bits - c.prefixLength)), c.family];
}

type Range = [bigint, bigint];

const overlap = (a: Range, b: Range): boolean => a[0] < b[1] && b[0] < a[1];

/** The parent prefix's range: the block twice the size, aligned. */
function parentRange([s, e]: Range): Range {
  const size = (e - s) * 2n;
  const start = s - (s % size);
  return [start, start + size];
}

/**
 * Exactly the complement: the result's prefixes are disjoint from each other
 * and from every exclusion, and with the exclusions they fill the space.
 * Minimal: no prefix can be widened (its parent would reach an exclusion).
 */
function expectExactMinimalComplement(excluded: string[], result: string[]): void {
  for (const family of [4, 6] as const) {
    const bits = family === 4 ? 32 : 128;
    const space = 1n << BigInt(bits);
    const res = result.map(range).filter((r) => r[2] === family).map(([s, e]): Range => [s, e]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const ex = excluded.map(range).filter((r) => r[2] === family).map(([s, e]): Range => [s, e]);
    const problems: string[] = [];
    res.forEach((r, i) => {
      if (i > 0 && res[i - 1][1] > r[0]) problems.push(`overlapping results at ${r[0]}`);
      if (ex.some((e) => overlap(r, e))) problems.push(`result ${r[0]} reaches an exclusion`);
      if (r[1] - r[0] < space && !ex.some((e) => overlap(parentRange(r), e))) problems.push(`result ${r[0]} could be one prefix wider`);
    });
    expect(problems).toEqual([]);
    // Union size of the exclusions (merged) plus the result's size is the whole space.
    ex.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    let covered = 0n;
    let at = 0n;
    for (const [s, e] of ex) {
      const from = s > at ? s : at;
      if (e > from) covered += e - from;
      if (e > at) at = e;
    }
    expect(covered + res.reduce((sum, [s, e]) => sum + (e - s), 0n)).toBe(space);
  }
}

describe('routing.exclude as AllowedIPs', () => {
  test('nothing excluded: the whole of both families', () => {
    expect(allowedIpsFor([])).toEqual(['0.0.0.0/0', '::/0']);
  });

  test('excluding 0.0.0.0/0 leaves IPv6 only', () => {
    expect(allowedIpsFor(['0.0.0.0/0'])).toEqual(['::/0']);
  });

  test('excluding everything leaves nothing', () => {
    expect(allowedIpsFor(['0.0.0.0/0', '::/0'])).toEqual([]);
  });

  test('a home LAN /16 gives the well-known 16-prefix complement', () => {
    expect(allowedIpsFor(['192.168.0.0/16']).filter((p) => !p.includes(':'))).toEqual([
      '0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/9', '192.128.0.0/11', '192.160.0.0/13', '192.169.0.0/16',
      '192.170.0.0/15', '192.172.0.0/14', '192.176.0.0/12', '192.192.0.0/10', '193.0.0.0/8', '194.0.0.0/7',
      '196.0.0.0/6', '200.0.0.0/5', '208.0.0.0/4', '224.0.0.0/3',
    ]);
  });

  test('one excluded IPv4 host (/32) costs 32 prefixes, one IPv6 host (/128) 128', () => {
    const r = allowedIpsFor(['192.0.2.1/32', '2001:db8::1/128']);
    expect(r.filter((p) => !p.includes(':'))).toHaveLength(32);
    expect(r.filter((p) => p.includes(':'))).toHaveLength(128);
    expectExactMinimalComplement(['192.0.2.1/32', '2001:db8::1/128'], r);
  });

  test('adjacent exclusions merge: two /9 halves equal one /8', () => {
    expect(allowedIpsFor(['10.0.0.0/9', '10.128.0.0/9'])).toEqual(allowedIpsFor(['10.0.0.0/8']));
  });

  test('overlapping and repeated exclusions count once', () => {
    expect(allowedIpsFor(['10.1.0.0/16', '10.0.0.0/8', '10.0.0.0/8'])).toEqual(allowedIpsFor(['10.0.0.0/8']));
  });

  test('IPv6 exclusions are subtracted from ::/0', () => {
    const r = allowedIpsFor(['fd00::/8']);
    expect(r).toContain('::/1');
    expect(r).toContain('fe00::/7');
    expectExactMinimalComplement(['fd00::/8'], r);
  });

  test('the tunnel pools stay inside even when an exclusion covers them', () => {
    const r = allowedIpsFor(['10.0.0.0/8'], ['10.77.0.0/16', 'fd5a:1e3b:77aa::/64']);
    expect(r).toContain('10.77.0.0/16');
    expect(r).toContain('::/0');
    // What is really excluded: 10.0.0.0/8 without 10.77.0.0/16.
    const effective = ['10.0.0.0/10', '10.64.0.0/13', '10.72.0.0/14', '10.76.0.0/16', '10.78.0.0/15', '10.80.0.0/12', '10.96.0.0/11', '10.128.0.0/9'];
    expectExactMinimalComplement(effective, r);
  });

  test('random exclusions: always the exact, minimal complement', () => {
    const rnd = seededRandom(9);
    for (let round = 0; round < 40; round++) {
      const ex: string[] = [];
      for (let i = 0; i < 1 + Math.floor(rnd() * 6); i++) {
        if (rnd() < 0.6) {
          const len = 1 + Math.floor(rnd() * 32);
          const a = Math.floor(rnd() * 2 ** 32);
          ex.push(`${IpCidr.of(IpCidr.parse(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`).address, len).network.toString()}/${len}`);
        } else {
          const len = 1 + Math.floor(rnd() * 128);
          const hex = Array.from({ length: 8 }, () => Math.floor(rnd() * 65536).toString(16)).join(':');
          ex.push(`${IpCidr.of(IpCidr.parse(hex).address, len).network.toString()}/${len}`);
        }
      }
      expectExactMinimalComplement(ex, allowedIpsFor(ex));
    }
  });
});
