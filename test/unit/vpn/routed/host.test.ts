// What routed mode changes on the host and how it puts it back
// (vpn/routed/plan.ts, host.ts), with the commands and sysctls faked: the
// state file is written before each change, a failure undoes what was done
// and names the failing command, and a killed run's leftovers are removed at
// the next start, but never those of a run still alive.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HostSetupError, ROUTED_STATE_FILE, hostPlan, ipCommands, nftRuleset, removeRoutedLeftovers, type HostIo, type RoutedHostPlan,
} from '../../../../vpn/routed';
import { RoutedHost, runCommand } from '../../../../vpn/routed/host';

const plan = (nat: 'masquerade' | 'none' = 'masquerade'): RoutedHostPlan =>
  hostPlan({ tun: 'sightline0', mtu: 1420, serverV4: '10.77.0.1', serverV6: 'fd77:1:2::1', ipv4Pool: '10.77.0.0/24', ipv6Pool: 'fd77:1:2::/64', nat });

interface Fake extends HostIo {
  commands: string[];
  sysctls: Record<string, string>;
  /** The state file's content when each command ran, by command line. */
  stateWhen: Record<string, string | null>;
  tables: Set<string>;
  alive: Set<number>;
  failOn: RegExp | null;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sightline-routed-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fake(sysctls: Record<string, string> = { 'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0' }): Fake {
  const f: Fake = {
    dataDir: dir,
    commands: [],
    sysctls: { ...sysctls },
    stateWhen: {},
    tables: new Set(),
    alive: new Set(),
    failOn: null,
    run: (cmd, args, input) => {
      const line = [cmd, ...args].join(' ');
      f.commands.push(line);
      const file = join(dir, ROUTED_STATE_FILE);
      f.stateWhen[line] = existsSync(file) ? readFileSync(file, 'utf8') : null;
      if (f.failOn?.test(line)) throw new HostSetupError(`\`${line}\` failed: RTNETLINK answers: Operation not supported`);
      if (line === 'nft -f -' && input !== undefined) f.tables.add('sightline');
      if (line === 'nft list tables inet') return [...f.tables].map((t) => `table inet ${t}\n`).join('');
      if (line === 'nft delete table inet sightline') f.tables.delete('sightline');
      return '';
    },
    sysctl: {
      read: (name) => f.sysctls[name],
      write: (name, value) => {
        f.commands.push(`sysctl ${name}=${value}`);
        f.sysctls[name] = value;
      },
    },
    isRunning: (pid) => f.alive.has(pid),
  };
  return f;
}

const statePath = (): string => join(dir, ROUTED_STATE_FILE);

describe('routed mode host plan', () => {
  test('the TUN gets the tunnel addresses with the pool prefixes (so the kernel routes the pools into it), the MTU, a longer queue, no link-local address, then up', () => {
    expect(ipCommands(plan()).map((a) => a.join(' '))).toEqual([
      'link set dev sightline0 mtu 1420 txqueuelen 2000',
      'link set dev sightline0 addrgenmode none',
      'addr add 10.77.0.1/24 dev sightline0',
      'addr add fd77:1:2::1/64 dev sightline0 nodad',
      'link set dev sightline0 up',
    ]);
  });

  test('pools given with host bits are routed as networks', () => {
    const p = hostPlan({ tun: 't0', mtu: 1280, serverV4: '10.77.0.1', serverV6: 'fd77::1', ipv4Pool: '10.77.0.9/16', ipv6Pool: 'fd77::9/48', nat: 'none' });
    expect(p.pools).toEqual(['10.77.0.0/16', 'fd77::/48']);
    expect(p.addresses).toEqual(['10.77.0.1/16', 'fd77::1/48']);
  });

  test('with masquerade the table replaces any earlier one atomically and masquerades the pools leaving other interfaces', () => {
    const text = nftRuleset(plan());
    expect(text.split('\n').slice(0, 3)).toEqual(['table inet sightline {}', 'delete table inet sightline', 'table inet sightline {']);
    expect(text).toContain('ip saddr 10.77.0.0/24 oifname != "sightline0" counter masquerade');
    expect(text).toContain('ip6 saddr fd77:1:2::/64 oifname != "sightline0" counter masquerade');
  });

  test.each(['masquerade', 'none'] as const)('with nat %s nothing from the TUN is delivered to the host, and nothing opens connections toward devices', (nat) => {
    const text = nftRuleset(plan(nat));
    expect(text).toMatch(/chain input \{\n\s+type filter hook input priority filter; policy accept;\n\s+iifname "sightline0" counter drop/);
    expect(text).toMatch(/oifname "sightline0" ct state established,related accept\n\s+oifname "sightline0" counter drop/);
    expect(text.includes('masquerade')).toBe(nat === 'masquerade');
  });
});

describe('routed mode host setup', () => {
  test('records each sysctl before changing it, and the table before creating it', () => {
    const f = fake();
    const changes = new RoutedHost(f, plan()).setUp();
    expect(changes.forwarding).toEqual({ 'net.ipv4.ip_forward': { value: '1', was: '0' }, 'net.ipv6.conf.all.forwarding': { value: '1', was: '0' } });
    expect(f.sysctls).toEqual({ 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1' });
    const state = JSON.parse(readFileSync(statePath(), 'utf8')) as Record<string, unknown>;
    expect(state).toEqual({ pid: process.pid, tun: 'sightline0', nftTable: true, sysctls: { 'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0' } });
    // When nft ran, the state file already said the table may exist.
    expect(JSON.parse(f.stateWhen['nft -f -'] ?? 'null')).toMatchObject({ nftTable: true });
    // And before the first `ip` command, a state file naming this process existed.
    expect(JSON.parse(f.stateWhen['ip link set dev sightline0 mtu 1420 txqueuelen 2000'] ?? 'null')).toMatchObject({ pid: process.pid });
  });

  test('a sysctl that was already 1 is left alone and not restored later', () => {
    const f = fake({ 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '0' });
    const host = new RoutedHost(f, plan());
    expect(host.setUp().forwarding['net.ipv4.ip_forward']).toEqual({ value: '1', was: null });
    expect(host.tearDown()).toEqual([]);
    expect(f.sysctls).toEqual({ 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '0' });
  });

  test('a clean exit removes the table, restores the sysctls and deletes the state file', () => {
    const f = fake();
    const host = new RoutedHost(f, plan());
    host.setUp();
    expect(host.tearDown()).toEqual([]);
    expect(f.tables.size).toBe(0);
    expect(f.sysctls).toEqual({ 'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0' });
    expect(existsSync(statePath())).toBe(false);
  });

  test('a failing command stops the setup with its name and message, after undoing what was done', () => {
    const f = fake();
    f.failOn = /^nft -f/;
    expect(() => new RoutedHost(f, plan()).setUp()).toThrow('`nft -f -` failed: RTNETLINK answers: Operation not supported');
    expect(f.sysctls).toEqual({ 'net.ipv4.ip_forward': '0', 'net.ipv6.conf.all.forwarding': '0' });
    expect(existsSync(statePath())).toBe(false);
  });
});

describe('leftovers of a killed run', () => {
  const killedState = (pid: number) => JSON.stringify({ pid, tun: 'sightline0', nftTable: true, sysctls: { 'net.ipv4.ip_forward': '0' } });

  test('are removed at the next start: the table deleted, the sysctls restored, the state file gone', () => {
    const f = fake({ 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '0' });
    f.tables.add('sightline');
    writeFileSync(statePath(), killedState(999_999));
    expect(removeRoutedLeftovers(f)).toMatchObject({ pid: 999_999, nftTable: true });
    expect(f.commands).toContain('nft delete table inet sightline');
    expect(f.sysctls['net.ipv4.ip_forward']).toBe('0');
    expect(existsSync(statePath())).toBe(false);
  });

  test('nothing to do without a state file', () => {
    const f = fake();
    expect(removeRoutedLeftovers(f)).toBeNull();
    expect(f.commands).toEqual([]);
  });

  test('are not touched while the run that made them is alive (two concentrators on one data directory)', () => {
    const f = fake({ 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1' });
    f.alive.add(4242);
    writeFileSync(statePath(), killedState(4242));
    expect(() => removeRoutedLeftovers(f)).toThrow(/a concentrator \(pid 4242\) is running in routed mode with this data directory/);
    expect(f.sysctls['net.ipv4.ip_forward']).toBe('1');
  });

  test('a state file naming a sysctl routed mode never sets is refused, not written to /proc/sys', () => {
    const f = fake();
    writeFileSync(statePath(), JSON.stringify({ pid: 1, tun: 'x', nftTable: false, sysctls: { 'kernel.core_pattern': '|/tmp/x' } }));
    expect(() => removeRoutedLeftovers(f)).toThrow(/is not a routed-mode state file \(unexpected sysctl kernel\.core_pattern/);
    expect(f.commands).toEqual([]);
  });

  test('when they cannot be removed, the error says how to finish by hand', () => {
    const f = fake();
    f.failOn = /^nft list/;
    writeFileSync(statePath(), killedState(999_999));
    expect(() => removeRoutedLeftovers(f)).toThrow(/cannot remove what an earlier routed-mode run left on this host: .*run as root or with CAP_NET_ADMIN, or remove them by hand and delete /);
  });
});

describe('host commands', () => {
  test('a missing command says which package to install', () => {
    expect(() => runCommand('nft-not-installed-here', ['list'])).toThrow(/routed mode needs the `nft-not-installed-here` command, which is not installed/);
  });

  test('a failing command is named with what it printed', () => {
    expect(() => runCommand('sh', ['-c', 'echo "Error: Could not process rule" >&2; exit 1'])).toThrow('`sh -c echo "Error: Could not process rule" >&2; exit 1` failed: Error: Could not process rule');
  });
});
