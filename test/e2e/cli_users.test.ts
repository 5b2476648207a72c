// The user and device commands as an admin types them: help, argument errors
// (exit 1 with what to do), an invalid config (exit 2), outputs, and leases
// under concurrent `device add` from separate processes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, buildOnce } from '../helpers/topology';

jest.setTimeout(180_000);

const EP = ['--endpoint', 'vpn.example.com:51820'];

function sightline(dir: string, args: string[]) {
  const r = spawnSync('node', [BIN, '--data-dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function sightlineAsync(dir: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [BIN, '--data-dir', dir, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dataDir = () => mkdtempSync(join(tmpdir(), 'cli-users-'));

describe('sightline user and device commands', () => {
  beforeAll(() => buildOnce());

  test.each([
    'user', 'user add', 'user list', 'user disable', 'user enable', 'user remove',
    'device', 'device add', 'device list', 'device remove', 'device renew',
    'peer add', 'peer list', 'peer remove',
  ])('sightline %s --help explains the command and exits 0', (cmd) => {
    const r = sightline(dataDir(), [...cmd.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: sightline /m);
  });

  test('device add without a user is a usage error naming the argument', () => {
    const r = sightline(dataDir(), ['device', 'add']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing required argument 'user'/);
  });

  test('an unknown option is a usage error', () => {
    const r = sightline(dataDir(), ['device', 'add', 'alice', '--expire', '30d']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown option '--expire'/);
  });

  test('a malformed --expires says what is expected, and adds nothing', () => {
    const dir = dataDir();
    const r = sightline(dir, ['device', 'add', 'alice', '--expires', '30 days', ...EP]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid expiry "30 days": expected a duration like 30d, 12h, 90m/);
    expect(sightline(dir, ['user', 'list', '--json']).stdout.trim()).toBe('[]');
  });

  test('an --expires in the past is refused for a new device', () => {
    const r = sightline(dataDir(), ['device', 'add', 'alice', '--expires', '2020-01-01', ...EP]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--expires 2020-01-01 is in the past/);
  });

  test('device renew requires --expires', () => {
    const r = sightline(dataDir(), ['device', 'renew', 'alice', 'default']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/required option '--expires <when>' not specified/);
  });

  test('unknown users and devices are named in the error, with the command that lists them', () => {
    const dir = dataDir();
    expect(sightline(dir, ['user', 'disable', 'nobody']).stderr).toMatch(/no user named "nobody" \(see: sightline user list\)/);
    sightline(dir, ['device', 'add', 'alice', ...EP]);
    const r = sightline(dir, ['device', 'remove', 'alice', 'tablet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/user "alice" has no device named "tablet" \(see: sightline device list alice\)/);
    expect(sightline(dir, ['device', 'list', 'nobody']).code).toBe(1);
  });

  test('an invalid config exits 2 for the control commands too', () => {
    const dir = dataDir();
    writeFileSync(join(dir, 'sightline.yaml'), 'tunnel:\n  ipv4Pool: banana\n');
    const r = sightline(dir, ['user', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tunnel\.ipv4Pool: expected an IPv4 prefix/);
  });

  test('device add prints the config; --qr prints a QR code instead; --qr-png writes a private PNG instead', () => {
    const dir = dataDir();
    const text = sightline(dir, ['device', 'add', 'alice', ...EP]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\[Interface\]\n# Sightline peer "alice"\nPrivateKey = /);
    expect(text.stderr).toMatch(/device "default" of user "alice" \(new user\) added: 10\.77\.0\.2/);
    const qr = sightline(dir, ['device', 'add', 'alice', '--qr', ...EP]);
    expect(qr.code).toBe(0);
    expect(qr.stdout).not.toContain('PrivateKey');
    expect(qr.stdout).toMatch(/[▀▄█]{7}/);
    const png = join(dir, 'phone.png');
    const file = sightline(dir, ['device', 'add', 'alice', '--name', 'phone', '--qr-png', png, ...EP]);
    expect(file.code).toBe(0);
    expect(file.stdout).toBe('');
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).mode & 0o777).toBe(0o600);
    expect(sightline(dir, ['device', 'list', 'alice', '--json']).stdout).toMatch(/"device": "phone"/);
  });

  test('device list without a running concentrator says "never" and "-" for the live fields', () => {
    const dir = dataDir();
    sightline(dir, ['device', 'add', 'alice', '--expires', '2099-01-01', ...EP]);
    const r = sightline(dir, ['device', 'list']);
    expect(r.code).toBe(0);
    const [header, row] = r.stdout.trim().split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['USER', 'DEVICE', 'IPV4', 'IPV6', 'PUBLIC KEY', 'STATE', 'LAST HANDSHAKE', 'ENDPOINT', 'RX', 'TX', 'EXPIRES']);
    expect(row.split(/\s{2,}/).slice(5)).toEqual(['active', 'never', '-', '-', '-', '2099-01-01T00:00:00.000Z']);
    const json = JSON.parse(sightline(dir, ['device', 'list', '--json']).stdout) as Array<Record<string, unknown>>;
    expect(json[0]).toMatchObject({ user: 'alice', device: 'default', state: 'active', lastHandshake: null, endpoint: null, rxBytes: null, txBytes: null });
  });

  test('user disable/enable and device renew show in the device states', () => {
    const dir = dataDir();
    sightline(dir, ['user', 'add', 'alice', '--email', 'alice@example.com']);
    sightline(dir, ['device', 'add', 'alice', ...EP]);
    expect(sightline(dir, ['user', 'disable', 'alice']).code).toBe(0);
    expect(sightline(dir, ['device', 'list', '--json']).stdout).toMatch(/"state": "disabled"/);
    expect(sightline(dir, ['user', 'enable', 'alice']).code).toBe(0);
    const renew = sightline(dir, ['device', 'renew', 'alice', 'default', '--expires', '2020-01-01']);
    expect(renew.stderr).toMatch(/expired at 2020-01-01T00:00:00\.000Z: it is refused from now on/);
    expect(sightline(dir, ['device', 'list', '--json']).stdout).toMatch(/"state": "expired"/);
    expect(sightline(dir, ['device', 'renew', 'alice', 'default', '--expires', 'never']).code).toBe(0);
    expect(sightline(dir, ['device', 'list', '--json']).stdout).toMatch(/"state": "active"/);
    expect(JSON.parse(sightline(dir, ['user', 'list', '--json']).stdout)).toMatchObject([{ name: 'alice', email: 'alice@example.com', disabled: false, devices: 1 }]);
  });

  test('user list --json gives each user\'s state as the table prints it (enabled/disabled)', () => {
    const dir = dataDir();
    sightline(dir, ['user', 'add', 'alice']);
    sightline(dir, ['user', 'add', 'bob']);
    expect(sightline(dir, ['user', 'disable', 'bob']).code).toBe(0);
    expect(JSON.parse(sightline(dir, ['user', 'list', '--json']).stdout)).toMatchObject([
      { name: 'alice', state: 'enabled', disabled: false },
      { name: 'bob', state: 'disabled', disabled: true },
    ]);
    expect(sightline(dir, ['user', 'list']).stdout).toMatch(/^bob +- +disabled +0 /m);
  });

  test('peer remove NAME removes the device "default" that peer add NAME made', () => {
    const dir = dataDir();
    sightline(dir, ['peer', 'add', 'alice', ...EP]);
    sightline(dir, ['device', 'add', 'alice', '--name', 'phone', ...EP]);
    expect(sightline(dir, ['peer', 'list']).stdout).toMatch(/^alice\t.*\nalice\/phone\t/);
    expect(sightline(dir, ['peer', 'remove', 'alice']).code).toBe(0);
    expect(sightline(dir, ['peer', 'remove', 'alice/phone']).code).toBe(0);
    expect(sightline(dir, ['peer', 'list', '--json']).stdout.trim()).toBe('[]');
  });

  test('concurrent device add from separate processes never leases an address twice', async () => {
    const dir = dataDir();
    sightline(dir, ['user', 'list']); // create the store (and the IPv6 pool) once
    const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => sightlineAsync(dir, ['device', 'add', `user${i % 3}`, ...EP])));
    expect(runs.map((r) => r.code)).toEqual(Array(12).fill(0));
    const devices = JSON.parse(sightline(dir, ['device', 'list', '--json']).stdout) as Array<{ ipv4: string; ipv6: string; device: string; user: string }>;
    expect(devices).toHaveLength(12);
    expect(new Set(devices.map((d) => d.ipv4)).size).toBe(12);
    expect(new Set(devices.map((d) => d.ipv6)).size).toBe(12);
    expect(new Set(devices.map((d) => `${d.user}/${d.device}`)).size).toBe(12);
    const configs = runs.map((r) => /^Address = (\S+)\/32/m.exec(r.stdout)?.[1]);
    expect(new Set(configs).size).toBe(12);
  });
});
