// egress.mode, egress.tun.name and egress.nat (issue 11): validated like every other key, with file:line errors.
import { ConfigError, defaultConfig, parseConfigText } from '../../../../vpn/config';

function errorOf(text: string): string {
  try {
    parseConfigText(text, 'sightline.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

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
