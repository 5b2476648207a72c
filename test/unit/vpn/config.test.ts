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

describe('config loader', () => {
  test('embedded defaults match the documented values', () => {
    const c = defaultConfig();
    expect(c.listenPort).toBe(51820);
    expect(c.mtu).toBe(1420);
    expect(c.tunnel.ipv4Pool).toBe('10.77.0.0/16');
    expect(c.tls).toMatchObject({ inspectPorts: [443], onUpstreamError: 'block', revocation: 'soft', blockQuic: true });
    expect(c.tls.pinning).toEqual({ mode: 'learn', threshold: 3, windowSeconds: 300, bypassSeconds: 43_200 });
    expect(c.tls.nonTls).toBe('block');
    expect(c.tcp).toEqual({ idleTimeoutSeconds: 3600, maxFlowsPerUser: 4096, maxSynPerSecond: 200 });
  });

  test('resource limits default to 64 DNS queries in flight per user, 4096 in all, 64 MiB buffered per user, a quarter of memory (at most 4 GiB) in all', () => {
    const c = defaultConfig();
    expect(c.dns).toMatchObject({ maxInFlightPerUser: 64, maxInFlight: 4096 });
    expect(c.limits.maxBufferedBytesPerUser).toBe(64 * 1024 * 1024);
    expect(c.limits.maxBufferedBytes).toBeGreaterThanOrEqual(1024 * 1024);
    expect(c.limits.maxBufferedBytes).toBeLessThanOrEqual(4096 * 1024 * 1024);
  });

  test('resource limits are validated and located like every key', () => {
    expect(errorOf('limits:\n  maxBufferedBytesPerUser: 1000\n')).toMatch(/^sightline\.yaml:2:\d+: limits\.maxBufferedBytesPerUser: .*262144.*found 1000$/);
    expect(errorOf('dns:\n  maxInFlightPerUser: 0\n')).toMatch(/^sightline\.yaml:2:\d+: dns\.maxInFlightPerUser: .*found 0$/);
    expect(errorOf('limits:\n  maxBufferd: 5\n')).toMatch(/limits: unknown key\(s\) "maxBufferd"/);
    const c = parseConfigText('limits:\n  maxBufferedBytesPerUser: 4194304\n  maxBufferedBytes: 1073741824\ndns:\n  maxInFlight: 100\n', 'f');
    expect(c.limits).toEqual({ maxBufferedBytesPerUser: 4194304, maxBufferedBytes: 1073741824 });
    expect(c.dns.maxInFlight).toBe(100);
  });

  test('an empty file means defaults', () => {
    expect(parseConfigText('', 'f.yaml')).toEqual(defaultConfig());
  });

  test('a wrong type names file, line, key path, expected and found', () => {
    expect(errorOf('mtu: 1420\nlistenPort: "x"\n')).toBe('sightline.yaml:2:13: listenPort: expected number, found "x"');
  });

  test('a bad prefix in a nested key is located on its line', () => {
    const msg = errorOf('tunnel:\n  ipv4Pool: 10.0.0.0/33\n');
    expect(msg).toMatch(/^sightline\.yaml:2:\d+: tunnel\.ipv4Pool: expected an IPv4 prefix like 10\.77\.0\.0\/16, found "10\.0\.0\.0\/33"$/);
  });

  test('tls.pinning.mode and tls.nonTls accept only their documented values', () => {
    expect(parseConfigText('tls:\n  nonTls: allow\n  pinning:\n    mode: approve\n', 'f.yaml').tls).toMatchObject({ nonTls: 'allow', pinning: { mode: 'approve' } });
    expect(errorOf('tls:\n  pinning:\n    mode: ask\n')).toBe('sightline.yaml:3:11: tls.pinning.mode: expected one of "learn", "approve", "off", found "ask"');
    expect(errorOf('tls:\n  nonTls: relay\n')).toBe('sightline.yaml:2:11: tls.nonTls: expected one of "block", "allow", found "relay"');
  });

  test('the retired tls.pinning.bypass key is refused with how to migrate to tls.pinning.mode', () => {
    const msg = errorOf('tls:\n  pinning:\n    bypass: false\n');
    expect(msg).toMatch(/^sightline\.yaml:3:13: tls\.pinning\.bypass: expected tls\.pinning\.mode instead/);
    expect(msg).toContain('`bypass: false` is closest to `mode: approve`');
    expect(msg).toContain('found false');
  });

  test('an unknown key is rejected rather than silently ignored', () => {
    expect(errorOf('listenPrt: 51820\n')).toMatch(/sightline\.yaml:1:1: \(top level\): unknown key\(s\) "listenPrt"/);
  });

  test('an enum value outside the allowed set lists the allowed values', () => {
    expect(errorOf('tls:\n  revocation: maybe\n')).toMatch(/tls\.revocation: expected one of "soft", "hard", "off", found "maybe"/);
  });

  test('out-of-range numbers are rejected', () => {
    expect(errorOf('mtu: 100\n')).toMatch(/^sightline\.yaml:1:6: mtu: .*1280.*found 100$/);
  });

  test('invalid YAML is reported with its position', () => {
    expect(errorOf('a: [\n')).toMatch(/^sightline\.yaml:\d+:\d+: invalid YAML/);
  });

  test('every bad list element is reported', () => {
    expect(errorOf('dns:\n  upstream: ["1.2.3.4", "x"]\n')).toMatch(/dns\.upstream\.1: expected an IP address.*found "x"/);
  });

  test('valid keys are accepted', () => {
    const c = parseConfigText('endpoint: vpn.example.com:51820\ndns:\n  upstream: ["10.0.0.53", "[fd00::53]:5353"]\n', 'f');
    expect(c.endpoint).toBe('vpn.example.com:51820');
    expect(c.dns.upstream).toEqual(['10.0.0.53', '[fd00::53]:5353']);
  });
});

// egress.deny and egress.allow: lists of IPv4/IPv6 prefixes, validated like every other key.
describe('egress config', () => {
  test('both lists are empty by default: only the built-in refusals apply', () => {
    expect(defaultConfig().egress).toMatchObject({ deny: [], allow: [] });
  });

  test('IPv4 and IPv6 prefixes are accepted in both lists', () => {
    const c = parseConfigText('egress:\n  deny: ["10.20.0.0/16", "fd20::/16"]\n  allow: ["169.254.169.254/32", "::1/128"]\n', 'f');
    expect(c.egress).toMatchObject({ deny: ['10.20.0.0/16', 'fd20::/16'], allow: ['169.254.169.254/32', '::1/128'] });
  });

  test.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.1', 'intranet.corp/8', '010.0.0.0/8', 'fe80::1%eth0/64', '10.0.0.0/8/8'])(
    'a bad prefix %s is reported with its line and list position',
    (bad) => {
      const msg = errorOf(`egress:\n  allow:\n    - 10.1.0.0/16\n    - "${bad}"\n`);
      expect(msg).toMatch(/^sightline\.yaml:4:\d+: egress\.allow\.1: expected an IPv4 or IPv6 prefix like 10\.20\.0\.0\/16 or fd00::\/8, found /);
    },
  );

  test.each([['deny', '10.20.1.0/16', '10.20.0.0/16'], ['allow', 'fd20::1/64', 'fd20::/64']])(
    'egress.%s refuses %s, a prefix with host bits, naming the network it would cover',
    (list, bad, network) => {
      const msg = errorOf(`egress:\n  ${list}:\n    - "${bad}"\n`);
      expect(msg).toMatch(new RegExp(`^sightline\\.yaml:3:\\d+: egress\\.${list}\\.0: `));
      expect(msg).toContain(`a prefix without host bits (${network}, or a longer prefix length)`);
    },
  );

  test('a single string instead of a list is refused', () => {
    expect(errorOf('egress:\n  deny: 10.0.0.0/8\n')).toMatch(/^sightline\.yaml:2:\d+: egress\.deny: expected array, found "10\.0\.0\.0\/8"$/);
  });

  test('an unknown key under egress is refused', () => {
    expect(errorOf('egress:\n  permit: []\n')).toMatch(/egress: unknown key\(s\) "permit"/);
  });
});

// egress.mode, egress.tun.name and egress.nat (issue 11, routed mode).
describe('routed mode config', () => {
  test('socket mode is the default, with sightline0 and masquerade ready for routed mode', () => {
    expect(defaultConfig().egress).toEqual({ deny: [], allow: [], mode: 'socket', tun: { name: 'sightline0' }, nat: 'masquerade' });
  });

  test('routed mode with its own interface name and no NAT', () => {
    const c = parseConfigText('egress:\n  mode: routed\n  tun:\n    name: vpn-pool0\n  nat: none\n', 'f');
    expect(c.egress).toMatchObject({ mode: 'routed', tun: { name: 'vpn-pool0' }, nat: 'none' });
  });

  test('an unknown mode is refused with its line and the choices', () => {
    expect(errorOf('egress:\n  mode: tun\n')).toMatch(/^sightline\.yaml:2:\d+: egress\.mode: .*"socket".*"routed"/);
  });

  test('an unknown NAT mode is refused with its line', () => {
    expect(errorOf('egress:\n  nat: snat\n')).toMatch(/^sightline\.yaml:2:\d+: egress\.nat: .*"masquerade".*"none"/);
  });

  test.each([
    ['a name longer than IFNAMSIZ allows', 'sightline-pool-0'],
    ['a name an nftables rule would need quoted', 'vpn pool'],
    ['a kernel name template', 'tun%d'],
    ['a leading dash (read as an option by ip)', '-x'],
    ['an empty name', '""'],
  ])('%s is refused as egress.tun.name', (_what, name) => {
    expect(errorOf(`egress:\n  tun:\n    name: ${name}\n`)).toMatch(/^sightline\.yaml:3:\d+: egress\.tun\.name: expected an interface name of 1-15 bytes/);
  });

  test('an unknown key under egress.tun is refused', () => {
    expect(errorOf('egress:\n  tun:\n    persist: true\n')).toMatch(/egress\.tun: unknown key\(s\) "persist"/);
  });
});
