// The decision: first match wins, every field a rule sets must match, and
// names match label by label.
import { policyFrom, query, ruleFor, TempDir } from './helpers';

const base = `groups:
  finance: [bob, carol]
  contractors: [carol, dave]
`;

describe('rule order and fields', () => {
  test('the first matching rule wins, not the most specific one', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: wide, action: allow, dst: [10.0.0.0/8] }
    - { id: narrow, action: block, dst: [10.20.0.0/16] }
`);
    expect(ruleFor(p, query('alice', '10.20.1.1'))).toBe('wide');
  });

  test('a flow no rule matches gets the implicit no-match allow', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: only, action: block, dst: [10.20.0.0/16] }
`);
    expect(p.decide(query('alice', '192.0.2.1'))).toEqual({ action: 'allow', rule: 'no-match', index: 1, origin: 'implicit' });
  });

  test('group members get the group rule; everyone else falls through (allow finance, block the rest)', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: finance-db, action: allow, dst: [10.20.0.0/16], groups: [finance] }
    - { id: db-closed, action: block, dst: [10.20.0.0/16] }
`);
    expect(ruleFor(p, query('bob', '10.20.0.5'))).toBe('finance-db');
    expect(ruleFor(p, query('alice', '10.20.0.5'))).toBe('db-closed');
  });

  test('users and groups in one rule are two conditions: a listed user who is also a member', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: who, action: block, users: [carol, erin], groups: [finance] }
`);
    expect(ruleFor(p, query('carol', '192.0.2.1'))).toBe('who');
    // Listed but no member (erin), member but not listed (bob), neither (alice).
    expect(ruleFor(p, query('erin', '192.0.2.1'))).toBe('no-match');
    expect(ruleFor(p, query('bob', '192.0.2.1'))).toBe('no-match');
    expect(ruleFor(p, query('alice', '192.0.2.1'))).toBe('no-match');
  });

  test('several groups in one rule: a member of any of them', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: either, action: block, groups: [finance, contractors] }
`);
    for (const u of ['bob', 'carol', 'dave']) expect(ruleFor(p, query(u, '192.0.2.1'))).toBe('either');
    expect(ruleFor(p, query('alice', '192.0.2.1'))).toBe('no-match');
  });

  test('notGroups removes members even when they are also listed in users', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: staff, action: inspect, users: [carol, erin], notGroups: [contractors] }
`);
    expect(ruleFor(p, query('erin', '192.0.2.1'))).toBe('staff');
    expect(ruleFor(p, query('carol', '192.0.2.1'))).toBe('no-match');
  });

  test('notUsers alone applies to everyone else', () => {
    const p = policyFrom(`${base}policy:
  rules:
    - { id: not-dave, action: block, notUsers: [dave] }
`);
    expect(ruleFor(p, query('alice', '192.0.2.1'))).toBe('not-dave');
    expect(ruleFor(p, query('dave', '192.0.2.1'))).toBe('no-match');
  });

  test('ports match single ports and inclusive ranges', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: web, action: inspect, ports: [443, "8000-8100"] }
`);
    for (const port of [443, 8000, 8050, 8100]) expect(ruleFor(p, query('a', '192.0.2.1', port))).toBe('web');
    for (const port of [442, 444, 7999, 8101]) expect(ruleFor(p, query('a', '192.0.2.1', port))).toBe('no-match');
  });

  test('protocol restricts a rule; any matches all three; ports never match ICMP', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: udp-dns, action: allow, protocol: udp, ports: [53] }
    - { id: icmp, action: block, protocol: icmp }
    - { id: any-53, action: block, ports: [53] }
`);
    expect(ruleFor(p, query('a', '192.0.2.1', 53, null, 'udp'))).toBe('udp-dns');
    expect(ruleFor(p, query('a', '192.0.2.1', 53, null, 'tcp'))).toBe('any-53');
    expect(ruleFor(p, query('a', '192.0.2.1', 0, null, 'icmp'))).toBe('icmp');
  });

  test('IPv6 prefixes match IPv6 destinations only', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: v6, action: block, dst: ["fd00:20::/48"] }
    - { id: v4-all, action: allow, dst: [0.0.0.0/0] }
`);
    expect(ruleFor(p, query('a', 'fd00:20::1'))).toBe('v6');
    expect(ruleFor(p, query('a', 'fd00:21::1'))).toBe('no-match');
    expect(ruleFor(p, query('a', '10.0.0.1'))).toBe('v4-all');
  });

  test('an IPv4-mapped IPv6 destination is matched as the IPv4 host it reaches (no way around a block)', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: db, action: block, dst: [10.20.0.0/16] }
`);
    expect(ruleFor(p, query('a', '::ffff:10.20.0.1'))).toBe('db');
  });

  test('so are the IPv4-compatible and NAT64 forms (64:ff9b::/96); :: and ::1 stay IPv6', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: db, action: block, dst: [10.20.0.0/16] }
    - { id: v6, action: allow, dst: ["::/0"] }
`);
    expect(ruleFor(p, query('a', '64:ff9b::a14:5'))).toBe('db');
    expect(ruleFor(p, query('a', '::10.20.0.1'))).toBe('db');
    expect(ruleFor(p, query('a', '64:ff9b::a15:5'))).toBe('no-match');
    expect(ruleFor(p, query('a', '64:ff9b:1::a14:5'))).toBe('v6');
    expect(ruleFor(p, query('a', '::1'))).toBe('v6');
    expect(ruleFor(p, query('a', '2001:db8::a14:5'))).toBe('v6');
  });

  test('a /0 and a /32 in one rule both work', () => {
    const p = policyFrom(`policy:
  rules:
    - { id: host, action: block, dst: [192.0.2.7/32] }
    - { id: all, action: allow, dst: [0.0.0.0/0, "::/0"] }
`);
    expect(ruleFor(p, query('a', '192.0.2.7'))).toBe('host');
    expect(ruleFor(p, query('a', '192.0.2.8'))).toBe('all');
    expect(ruleFor(p, query('a', '2001:db8::1'))).toBe('all');
  });
});

describe('names: hosts and categories', () => {
  const hosts = `policy:
  rules:
    - { id: exact, action: block, hosts: [intranet.example.com] }
    - { id: wild, action: bypass, hosts: ["*.example.org"] }
    - { id: rest, action: allow }
`;

  test('an exact host matches only that name, case-insensitively, with a trailing dot tolerated', () => {
    const p = policyFrom(hosts);
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'intranet.example.com'))).toBe('exact');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'InTraNet.Example.COM.'))).toBe('exact');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'x.intranet.example.com'))).toBe('rest');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'example.com'))).toBe('rest');
  });

  test('a wildcard matches names below at any depth but not the domain itself', () => {
    const p = policyFrom(hosts);
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.example.org'))).toBe('wild');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'a.b.example.org'))).toBe('wild');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'example.org'))).toBe('rest');
  });

  test('a wildcard never matches a name that only ends with the same letters (notexample.org)', () => {
    const p = policyFrom(hosts);
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.notexample.org'))).toBe('rest');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'notexample.org'))).toBe('rest');
  });

  test('a flow without a name matches only rules without hosts or categories', () => {
    const p = policyFrom(hosts);
    expect(ruleFor(p, query('a', '192.0.2.1', 443, null))).toBe('rest');
    expect(ruleFor(p, query('a', '192.0.2.1', 443, ''))).toBe('rest');
  });

  describe('categories', () => {
    let dir: TempDir;
    beforeEach(() => {
      dir = new TempDir();
      dir.write('banks.txt', '# test banks\nexample.com\nBank.Example.NET.  # trailing dot, comment\n');
    });
    afterEach(() => dir.cleanup());

    const cats = `policy:
  categories:
    my-banks: banks.txt
  rules:
    - { id: banks, action: bypass, categories: [my-banks] }
    - { id: rest, action: inspect }
`;

    test('a category domain matches itself and every name below it', () => {
      const p = policyFrom(cats, dir);
      for (const h of ['example.com', 'www.example.com', 'a.b.example.com', 'EXAMPLE.com.', 'bank.example.net', 'x.bank.example.net']) {
        expect(ruleFor(p, query('a', '192.0.2.1', 443, h))).toBe('banks');
      }
    });

    test('a category domain never matches notexample.com or a parent domain', () => {
      const p = policyFrom(cats, dir);
      for (const h of ['notexample.com', 'www.notexample.com', 'example.com.evil.net', 'com', 'example.net', 'xbank.example.net']) {
        expect(ruleFor(p, query('a', '192.0.2.1', 443, h))).toBe('rest');
      }
    });

    test('hosts and categories in one rule are two conditions: the name must match a host and be in a category', () => {
      const p = policyFrom(`policy:
  categories:
    my-banks: banks.txt
  rules:
    - { id: names, action: bypass, hosts: ["*.example.com", intranet.corp.test], categories: [my-banks] }
`, dir);
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.example.com'))).toBe('names');
      // In the category but no host pattern matches (example.com itself), a host outside the category, neither.
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'example.com'))).toBe('no-match');
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'intranet.corp.test'))).toBe('no-match');
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'corp.test'))).toBe('no-match');
    });

    test('an admin category with a shipped name replaces the shipped list', () => {
      dir.write('finance.txt', 'mybank.test\n');
      const p = policyFrom('policy:\n  categories:\n    privacy-finance: finance.txt\n', dir);
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'online.mybank.test'))).toBe('privacy');
      expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.paypal.com'))).toBe('inspect-tls');
      expect(p.categories.find((c) => c.name === 'privacy-finance')).toMatchObject({ shipped: false, domains: 1 });
    });
  });
});

describe('the defaults (no policy.rules)', () => {
  test('banks and health portals are bypassed, inspected ports inspected, the rest allowed', () => {
    const p = policyFrom('tls:\n  inspectPorts: [443, 8443]\n');
    expect(p.usesDefaults).toBe(true);
    expect(p.decide(query('a', '192.0.2.1', 443, 'www.paypal.com'))).toMatchObject({ action: 'bypass', rule: 'privacy', origin: 'default' });
    expect(p.decide(query('a', '192.0.2.1', 443, 'www.mychart.com'))).toMatchObject({ action: 'bypass', rule: 'privacy' });
    expect(p.decide(query('a', '192.0.2.1', 8443, 'news.example'))).toMatchObject({ action: 'inspect', rule: 'inspect-tls' });
    expect(p.decide(query('a', '192.0.2.1', 443, null, 'udp'))).toMatchObject({ action: 'allow', rule: 'allow-rest' });
    expect(p.decide(query('a', '192.0.2.1', 22))).toMatchObject({ action: 'allow', rule: 'allow-rest' });
  });

  test('admin rules replace the defaults entirely', () => {
    const p = policyFrom('policy:\n  rules:\n    - { id: all, action: inspect }\n');
    expect(p.usesDefaults).toBe(false);
    expect(p.rules.map((r) => r.verdict.rule)).toEqual(['all', 'no-match']);
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.paypal.com'))).toBe('all');
  });

  test('a host on the shipped pinned-apps list is reported for the TLS engine to bypass', () => {
    const p = policyFrom('');
    expect(p.pinnedListed('1-courier.push.apple.com')).toBe(true);
    expect(p.pinnedListed('www.apple.com')).toBe(false);
    expect(p.pinnedListed(null)).toBe(false);
  });
});

describe('deciding before the name is known', () => {
  const p = policyFrom(`groups:
  finance: [bob]
policy:
  rules:
    - { id: no-ssh, action: block, ports: [22] }
    - { id: banks, action: bypass, hosts: ["*.bank.test"], ports: [443] }
    - { id: tls, action: inspect, ports: [443] }
`);

  test('a verdict no name can change is final at the SYN (a block can be a reset at once)', () => {
    expect(p.decideBeforeHost(query('a', '192.0.2.1', 22))).toEqual({ verdict: expect.objectContaining({ rule: 'no-ssh' }), hostMayMatter: false });
  });

  test('when a rule with hosts comes first, the name must be read before the verdict is final', () => {
    expect(p.decideBeforeHost(query('a', '192.0.2.1', 443))).toEqual({ verdict: expect.objectContaining({ rule: 'tls' }), hostMayMatter: true });
    expect(ruleFor(p, query('a', '192.0.2.1', 443, 'www.bank.test'))).toBe('banks');
  });
});
