// Every policy config mistake is refused with the file, line, key path, what
// was expected and what was found, like the rest of sightline.yaml.
import { join } from 'node:path';
import { ConfigError, defaultConfig, parseConfigText } from '../../../vpn/config';
import { TempDir } from './helpers';

function errorOf(text: string, file = 'sightline.yaml'): string {
  try {
    parseConfigText(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

const rules = (body: string) => `groups:\n  finance: [bob]\npolicy:\n  rules:\n${body}`;

describe('policy config errors', () => {
  test('a rule naming an undefined group says which groups exist', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      groups: [hr]\n'))).toBe(
      'sightline.yaml:7:16: policy.rules.0.groups.0: expected a group defined under "groups" (known: finance), found "hr"',
    );
  });

  test('a negated undefined group is refused the same way', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      notGroups: [finance, hr]\n'))).toMatch(
      /^sightline\.yaml:7:\d+: policy\.rules\.0\.notGroups\.1: expected a group defined under "groups" \(known: finance\), found "hr"$/,
    );
  });

  test('a rule naming an undefined category lists the shipped and declared ones', () => {
    expect(errorOf(rules('    - id: r1\n      action: bypass\n      categories: [banks]\n'))).toBe(
      'sightline.yaml:7:20: policy.rules.0.categories.0: expected a category defined under policy.categories or shipped (known: privacy-finance, privacy-health, pinned-apps), found "banks"',
    );
  });

  test('a duplicate rule id points at the second one and names the first', () => {
    expect(errorOf(rules('    - id: same\n      action: allow\n    - id: same\n      action: block\n'))).toBe(
      'sightline.yaml:7:11: policy.rules.1.id: expected a rule id not used before (policy.rules.0 already has it), found "same"',
    );
  });

  test('a rule without id is refused', () => {
    expect(errorOf(rules('    - action: allow\n'))).toMatch(/^sightline\.yaml:5:7: policy\.rules\.0\.id: expected string, found nothing$/);
  });

  test('the implicit rule id cannot be taken', () => {
    expect(errorOf(rules('    - id: no-match\n      action: allow\n'))).toMatch(/policy\.rules\.0\.id: expected a rule id other than "no-match" \(reserved for flows no rule matches\), found "no-match"$/);
  });

  test('an unknown action lists the four actions', () => {
    expect(errorOf(rules('    - id: r1\n      action: deny\n'))).toMatch(
      /^sightline\.yaml:6:15: policy\.rules\.0\.action: expected one of "inspect", "bypass", "allow", "block", found "deny"$/,
    );
  });

  test('a port range from high to low is refused as such', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      ports: [443, "8100-8000"]\n'))).toBe(
      'sightline.yaml:7:20: policy.rules.0.ports.1: expected a range from low to high ("8000-8100"), found "8100-8000"',
    );
  });

  test('a port outside 1-65535 is refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      ports: ["1-70000"]\n'))).toMatch(/policy\.rules\.0\.ports\.0: expected ports between 1 and 65535, found "1-70000"$/);
  });

  test('a port that is neither a number nor a range is refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      ports: [https]\n'))).toMatch(/policy\.rules\.0\.ports\.0: expected a port number or a range like "8000-8100", found "https"$/);
  });

  test('ports on an ICMP rule are refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: block\n      protocol: icmp\n      ports: [1]\n'))).toMatch(/policy\.rules\.0\.ports: expected no ports on a rule with protocol icmp/);
  });

  test('a malformed destination prefix is refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      dst: [10.20.0.0/33]\n'))).toMatch(
      /^sightline\.yaml:7:13: policy\.rules\.0\.dst\.0: expected an IPv4 or IPv6 prefix like 10\.20\.0\.0\/16 or fd00:20::\/48, found "10\.20\.0\.0\/33"$/,
    );
  });

  test('a prefix with host bits set is refused rather than guessed', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      dst: [10.20.1.0/16]\n'))).toMatch(
      /policy\.rules\.0\.dst\.0: expected a prefix without host bits \(10\.20\.0\.0\/16, or a longer prefix length\), found "10\.20\.1\.0\/16"$/,
    );
  });

  test('a wildcard anywhere but in front is refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      hosts: ["a.*.example.org"]\n'))).toMatch(/policy\.rules\.0\.hosts\.0: expected a host name like intranet\.example\.com, or a wildcard like \*\.example\.org.*found "a\.\*\.example\.org"$/);
  });

  test('an empty list is refused (it would match nothing)', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      users: []\n'))).toMatch(/policy\.rules\.0\.users: expected array to have >=1 items, found \[\]$/);
  });

  test('a misspelt rule key is refused', () => {
    expect(errorOf(rules('    - id: r1\n      action: allow\n      user: [alice]\n'))).toMatch(/policy\.rules\.0: unknown key\(s\) "user"/);
  });

  test('a group name with a space is refused and named', () => {
    expect(errorOf('groups:\n  "fin ance": [bob]\n')).toMatch(/^sightline\.yaml:2:\d+: groups\.fin ance: expected a group name of letters, digits.*found "fin ance"$/);
  });

  test('a bad routing.exclude prefix is refused', () => {
    expect(errorOf('routing:\n  exclude: [192.168.1.0/24, "home"]\n')).toMatch(/^sightline\.yaml:2:\d+: routing\.exclude\.1: expected an IPv4 or IPv6 prefix.*found "home"$/);
  });

  describe('category files', () => {
    let dir: TempDir;
    beforeEach(() => {
      dir = new TempDir();
    });
    afterEach(() => dir.cleanup());

    test('an unreadable category file is refused at its key, with the reason', () => {
      const file = join(dir.path, 'sightline.yaml');
      expect(errorOf('policy:\n  categories:\n    my-banks: missing.txt\n', file)).toBe(
        `${file}:3:15: policy.categories.my-banks: cannot read category file ${join(dir.path, 'missing.txt')}: ENOENT: no such file or directory, open '${join(dir.path, 'missing.txt')}'`,
      );
    });

    test('a bad line in a category file is located in that file', () => {
      const list = dir.write('banks.txt', '# banks\nbank.example\nexa mple.com\n');
      const file = join(dir.path, 'sightline.yaml');
      expect(errorOf(`policy:\n  categories:\n    my-banks: ${list}\n`, file)).toBe(
        `${file}:3:15: policy.categories.my-banks: ${list}:3: expected a domain name like example.com, found "exa mple.com"`,
      );
    });

    test('a relative category path is resolved against the config file folder', () => {
      dir.write('banks.txt', 'bank.example\n');
      const c = parseConfigText('policy:\n  categories:\n    my-banks: banks.txt\n', join(dir.path, 'sightline.yaml'));
      expect(c.policy.categories['my-banks']).toBe(join(dir.path, 'banks.txt'));
    });
  });

  test('the issue\'s example config is accepted', () => {
    const dir = new TempDir();
    try {
      dir.write('banks.txt', 'bank.example\n');
      const c = parseConfigText(
        [
          'groups:',
          '  finance: [bob]',
          'policy:',
          '  categories:',
          '    my-banks: banks.txt',
          '  rules:',
          '    - id: hr-only-finance',
          '      action: block',
          '      dst: [10.20.0.0/16, "fd00:20::/48"]',
          '      ports: [443, "8000-8100"]',
          '      protocol: tcp',
          '      users: [alice]',
          '      groups: [finance]',
          '      hosts: [intranet.example.com, "*.example.org"]',
          '      categories: [privacy-finance, my-banks]',
          '      notGroups: [finance]',
          'routing:',
          '  exclude: [192.168.0.0/16]',
        ].join('\n'),
        join(dir.path, 'sightline.yaml'),
      );
      expect(c.policy.rules?.[0]).toMatchObject({ id: 'hr-only-finance', action: 'block', protocol: 'tcp' });
      expect(c.routing.exclude).toEqual(['192.168.0.0/16']);
    } finally {
      dir.cleanup();
    }
  });

  test('without policy keys the defaults are empty and rules absent', () => {
    const c = defaultConfig();
    expect(c.groups).toEqual({});
    expect(c.policy).toEqual({ categories: {} });
    expect(c.routing).toEqual({ exclude: [] });
  });
});
