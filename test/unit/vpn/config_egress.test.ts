// egress.deny and egress.allow: lists of IPv4/IPv6 prefixes, validated like
// every other key (file:line, key path, what was expected, what was found).
import { ConfigError, defaultConfig, parseConfigText } from '../../../vpn/config';

function errorOf(text: string): string {
  try {
    parseConfigText(text, 'sightline.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('egress config', () => {
  test('both lists are empty by default: only the built-in refusals apply', () => {
    expect(defaultConfig().egress).toEqual({ deny: [], allow: [] });
  });

  test('IPv4 and IPv6 prefixes are accepted in both lists', () => {
    const c = parseConfigText('egress:\n  deny: ["10.20.0.0/16", "fd20::/16"]\n  allow: ["169.254.169.254/32", "::1/128"]\n', 'f');
    expect(c.egress).toEqual({ deny: ['10.20.0.0/16', 'fd20::/16'], allow: ['169.254.169.254/32', '::1/128'] });
  });

  test.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.1', 'intranet.corp/8', '010.0.0.0/8', 'fe80::1%eth0/64', '10.0.0.0/8/8'])(
    'a bad prefix %s is reported with its line and list position',
    (bad) => {
      const msg = errorOf(`egress:\n  allow:\n    - 10.1.0.0/16\n    - "${bad}"\n`);
      expect(msg).toMatch(/^sightline\.yaml:4:\d+: egress\.allow\.1: expected an IPv4 or IPv6 prefix like 10\.20\.0\.0\/16 or fd00::\/8, found /);
    },
  );

  test('a single string instead of a list is refused', () => {
    expect(errorOf('egress:\n  deny: 10.0.0.0/8\n')).toMatch(/^sightline\.yaml:2:\d+: egress\.deny: expected array, found "10\.0\.0\.0\/8"$/);
  });

  test('an unknown key under egress is refused', () => {
    expect(errorOf('egress:\n  permit: []\n')).toMatch(/egress: unknown key\(s\) "permit"/);
  });
});
