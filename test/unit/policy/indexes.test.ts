// The indexes under the decision: prefix ranges, the domain suffix trie,
// port intervals and the per-query rule sets.
import { IpAddress, IpCidr } from '../../../netstack/wire';
import { BitsetCache, Extra, bitsetOf } from '../../../policy/bitset';
import { PrefixIndex } from '../../../policy/prefixes';
import { DomainTrie, normalizeDomain, parseHostPattern, queryHost } from '../../../policy/domains';
import { PortIndex } from '../../../policy/ports';
import { parseCategoryText } from '../../../policy/category_file';

function trieOf(bits: 32 | 128, prefixes: string[]): PrefixIndex {
  const t = new PrefixIndex(bits);
  prefixes.forEach((p, i) => t.insert(IpCidr.parse(p), i));
  t.freeze(1, new Uint32Array(1));
  return t;
}

/** The rules whose prefixes contain the address, as the trie reports them. */
function rulesAt(t: PrefixIndex, addr: string): number[] {
  const a = IpAddress.parse(addr);
  const node = t.lookup(a.bytes, 0);
  return node < 0 ? [] : t.rulesOnPath(node).sort((x, y) => x - y);
}

describe('destination prefix ranges', () => {
  const t = trieOf(32, ['10.0.0.0/8', '10.20.0.0/16', '10.20.30.0/24', '10.20.30.40/32', '10.21.0.0/16', '192.0.2.0/24']);

  test('an address gets exactly the prefixes that contain it, nested or not', () => {
    expect(rulesAt(t, '10.20.30.40')).toEqual([0, 1, 2, 3]);
    expect(rulesAt(t, '10.20.30.41')).toEqual([0, 1, 2]);
    expect(rulesAt(t, '10.20.31.0')).toEqual([0, 1]);
    expect(rulesAt(t, '10.21.255.255')).toEqual([0, 4]);
    expect(rulesAt(t, '10.22.0.0')).toEqual([0]);
  });

  test('the first and last address of a prefix are inside, their neighbours outside', () => {
    expect(rulesAt(t, '192.0.2.0')).toEqual([5]);
    expect(rulesAt(t, '192.0.2.255')).toEqual([5]);
    expect(rulesAt(t, '192.0.1.255')).toEqual([]);
    expect(rulesAt(t, '192.0.3.0')).toEqual([]);
    expect(rulesAt(t, '9.255.255.255')).toEqual([]);
    expect(rulesAt(t, '11.0.0.0')).toEqual([]);
    expect(rulesAt(t, '0.0.0.0')).toEqual([]);
    expect(rulesAt(t, '255.255.255.255')).toEqual([]);
  });

  test('a /0 covers every address, down to the ends of the space', () => {
    const all = trieOf(32, ['0.0.0.0/0', '255.255.255.255/32']);
    expect(rulesAt(all, '0.0.0.0')).toEqual([0]);
    expect(rulesAt(all, '255.255.255.254')).toEqual([0]);
    expect(rulesAt(all, '255.255.255.255')).toEqual([0, 1]);
  });

  test('IPv6 prefixes, from /0 to /128', () => {
    const v6 = trieOf(128, ['::/0', 'fd00:20::/48', 'fd00:20::1/128', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128']);
    expect(rulesAt(v6, 'fd00:20::1')).toEqual([0, 1, 2]);
    expect(rulesAt(v6, 'fd00:20::2')).toEqual([0, 1]);
    expect(rulesAt(v6, 'fd00:20:0:ffff:ffff:ffff:ffff:ffff')).toEqual([0, 1]);
    expect(rulesAt(v6, 'fd00:21::')).toEqual([0]);
    expect(rulesAt(v6, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual([0, 3]);
  });
});

describe('domain suffix trie', () => {
  const t = new DomainTrie();
  const example = t.add('example.com');
  const deep = t.add('a.b.c.example.com');

  test('a name found whole is flagged as whole; a name below a node is not', () => {
    expect(t.locate('example.com')).toBe(example * 2 + 1);
    expect(t.locate('www.example.com')).toBe(example * 2);
    expect(t.locate('a.b.c.example.com')).toBe(deep * 2 + 1);
  });

  test('label-wise: notexample.com stops at com, never at example.com', () => {
    expect(t.locate('notexample.com')).toBe((t.nodeOf('com') as number) * 2);
    expect(t.nodeOf('xample.com')).toBeUndefined();
  });

  test('malformed names simply stop early (empty labels, leading dot)', () => {
    expect(t.locate('.example.com')).toBe(example * 2);
    expect(t.locate('example..com')).toBe((t.nodeOf('com') as number) * 2);
    expect(t.locate('')).toBe(0);
  });

  test('100,000 domains stay distinct (no hash collision is ever a match)', () => {
    const big = new DomainTrie();
    const ids = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) ids.set(`d${i}.x${i % 97}.test`, big.add(`d${i}.x${i % 97}.test`));
    expect([...ids].filter(([name, id]) => big.nodeOf(name) !== id)).toEqual([]);
    expect(big.nodeOf('d100000.x0.test')).toBeUndefined();
  });

  test('query names are lowercased and lose one trailing dot; empty is no name', () => {
    expect(queryHost('WWW.Example.COM.')).toBe('www.example.com');
    expect(queryHost('www.example.com')).toBe('www.example.com');
    expect(queryHost('.')).toBeNull();
    expect(queryHost('')).toBeNull();
  });

  test('config names: IDNs become A-labels, IP addresses and junk are refused', () => {
    expect(normalizeDomain('Bücher.example')).toBe('xn--bcher-kva.example');
    expect(normalizeDomain('10.0.0.1')).toBeNull();
    expect(normalizeDomain('exa mple.com')).toBeNull();
    expect(normalizeDomain('-bad.com')).toBeNull();
    expect(parseHostPattern('*.Example.org.')).toEqual({ domain: 'example.org', wildcard: true });
    expect(parseHostPattern('*')).toBeNull();
  });
});

describe('category files', () => {
  test('comments, blank lines and trailing comments are ignored; names are canonical', () => {
    expect(parseCategoryText('# header\n\nBank.Example.\npay.example  # note\n  # indented comment\n', 'f.txt')).toEqual(['bank.example', 'pay.example']);
  });

  test('a wildcard line is refused with a hint (a domain already covers names below it)', () => {
    expect(() => parseCategoryText('ok.example\n*.bank.example\n', 'f.txt')).toThrow('f.txt:2: expected a domain name like example.com (write example.com: a domain already covers the names below it), found "*.bank.example"');
  });
});

describe('port intervals', () => {
  const idx = new PortIndex([{ lo: 443, hi: 443, rule: 0 }, { lo: 8000, hi: 8100, rule: 1 }, { lo: 1, hi: 65535, rule: 2 }, { lo: 8100, hi: 9000, rule: 3 }], 1);
  const rulesAt = (port: number) => {
    const b = new Uint32Array(1);
    idx.addRules(idx.interval(port), b);
    return [0, 1, 2, 3].filter((r) => (b[0] & (1 << r)) !== 0);
  };

  test('each port gets exactly the ranges containing it, ends inclusive', () => {
    expect(rulesAt(0)).toEqual([]);
    expect(rulesAt(443)).toEqual([0, 2]);
    expect(rulesAt(444)).toEqual([2]);
    expect(rulesAt(8000)).toEqual([1, 2]);
    expect(rulesAt(8100)).toEqual([1, 2, 3]);
    expect(rulesAt(8101)).toEqual([2, 3]);
    expect(rulesAt(65535)).toEqual([2]);
  });
});

describe('per-query rule sets', () => {
  test('extra bits are cleared after use, leaving the set empty for the next decision', () => {
    const x = new Extra(4);
    x.addAll([1, 40, 127]);
    expect([...x.bits]).toEqual([2, 2 ** 8, 0, 2 ** 31]);
    x.clear();
    expect([...x.bits]).toEqual([0, 0, 0, 0]);
  });

  test('the cache stays within its budget: full, it starts over', () => {
    const c = new BitsetCache<number>(1, 64 * 4);
    for (let k = 0; k < 200; k++) c.get(k, (key) => bitsetOf(1, [key % 32]));
    expect(c.size).toBeLessThanOrEqual(64);
    expect([...c.get(199, () => new Uint32Array(1))]).toEqual([1 << (199 % 32)]);
  });
});
