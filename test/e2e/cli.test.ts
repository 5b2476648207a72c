// The command line as an admin uses it: data directory, config errors,
// peers, the CA. Runs the compiled `bin/sightline.js` like `npx sightline`.
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { BIN, buildOnce } from '../helpers/topology';

jest.setTimeout(120_000);

function sightline(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mode = (p: string) => statSync(p).mode & 0o777;

describe('sightline CLI', () => {
  beforeAll(() => buildOnce());

  test('peer add creates the data directory 0700, secrets 0600, and prints a wg-quick config', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'cli-')), 'data');
    const r = sightline(['peer', 'add', 'alice', '--endpoint', 'vpn.example.com:51820', '--data-dir', dir]);
    expect(r.code).toBe(0);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'server.key'))).toBe(0o600);
    expect(mode(join(dir, 'state.db'))).toBe(0o600);
    const conf = r.stdout;
    expect(conf).toMatch(/^\[Interface\]$/m);
    expect(conf).toMatch(/^PrivateKey = [A-Za-z0-9+/]{43}=$/m);
    expect(conf).toMatch(/^Address = 10\.77\.0\.2\/32, fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::2\/128$/m);
    expect(conf).toMatch(/^DNS = 10\.77\.0\.1, fd[0-9a-f:]+::1$/m);
    expect(conf).toMatch(/^MTU = 1420$/m);
    expect(conf).toMatch(/^AllowedIPs = 0\.0\.0\.0\/0, ::\/0$/m);
    expect(conf).toMatch(/^Endpoint = vpn\.example\.com:51820$/m);
    expect(conf).toMatch(/^PersistentKeepalive = 25$/m);
    // The client's private key is not kept on the server.
    const priv = /^PrivateKey = (.+)$/m.exec(conf)?.[1] ?? '';
    const db = readFileSync(join(dir, 'state.db'));
    expect(db.includes(Buffer.from(priv))).toBe(false);
  });

  test('two peers get distinct leases; a duplicate name is refused with a clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const a = sightline(['--data-dir', dir, 'peer', 'add', 'a', '--endpoint', '1.2.3.4:51820']);
    const b = sightline(['--data-dir', dir, 'peer', 'add', 'b', '--endpoint', '1.2.3.4:51820']);
    expect(/Address = (\S+),/.exec(a.stdout)?.[1]).not.toBe(/Address = (\S+),/.exec(b.stdout)?.[1]);
    const dup = sightline(['--data-dir', dir, 'peer', 'add', 'a', '--endpoint', '1.2.3.4:51820']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/a peer named "a" already exists/);
    const list = sightline(['--data-dir', dir, 'peer', 'list', '--json']);
    expect((JSON.parse(list.stdout) as unknown[]).length).toBe(2);
  });

  test('SIGHTLINE_DATA_DIR and SIGHTLINE_CONFIG are honoured', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const cfg = join(dir, 'other.yaml');
    writeFileSync(cfg, 'tunnel:\n  ipv4Pool: 10.99.0.0/24\nmtu: 1380\n');
    const r = sightline(['peer', 'add', 'carol', '--endpoint', '1.2.3.4:51820'], { SIGHTLINE_DATA_DIR: join(dir, 'd'), SIGHTLINE_CONFIG: cfg });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Address = 10\.99\.0\.2\/32/);
    expect(r.stdout).toMatch(/MTU = 1380/);
    expect(existsSync(join(dir, 'd', 'server.key'))).toBe(true);
  });

  test('an invalid config is rejected with file, line, key path, expected and found (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    writeFileSync(join(dir, 'sightline.yaml'), 'listenPort: 51820\ntunnel:\n  ipv4Pool: banana\n');
    const r = sightline(['--data-dir', dir, 'start']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'sightline.yaml')}:3:13: tunnel.ipv4Pool: expected an IPv4 prefix like 10.77.0.0/16, found "banana"`);
  });

  test('bad CLI arguments get a usage error, not a crash', () => {
    const r = sightline(['peer', 'add']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing required argument 'name'/);
    const bad = sightline(['peer', 'add', '../etc', '--data-dir', mkdtempSync(join(tmpdir(), 'cli-'))]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid peer name/);
    const ep = sightline(['peer', 'add', 'x', '--endpoint', 'nope', '--data-dir', mkdtempSync(join(tmpdir(), 'cli-'))]);
    expect(ep.stderr).toMatch(/invalid endpoint "nope"/);
  });

  test('policy show and explain from the built binary find the shipped category lists', () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    const show = sightline(['--data-dir', d, 'policy', 'show']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/privacy-finance +\d+ +shipped/);
    const explain = sightline(['--data-dir', d, 'policy', 'explain', '--user', 'alice', '--dst', '192.0.2.1:443', '--sni', 'www.paypal.com']);
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/^action +bypass$/m);
    expect(sightline(['--data-dir', d, 'policy', 'explain', '--user', 'alice', '--dst', 'nowhere']).code).toBe(2);
  });

  test('ca init creates a CA unique to the deployment and refuses to overwrite without --force', () => {
    const d1 = mkdtempSync(join(tmpdir(), 'cli-'));
    const d2 = mkdtempSync(join(tmpdir(), 'cli-'));
    expect(sightline(['--data-dir', d1, 'ca', 'init']).code).toBe(0);
    expect(sightline(['--data-dir', d2, 'ca', 'init']).code).toBe(0);
    const c1 = new X509Certificate(sightline(['--data-dir', d1, 'ca', 'export']).stdout);
    const c2 = new X509Certificate(sightline(['--data-dir', d2, 'ca', 'export']).stdout);
    expect(c1.fingerprint256).not.toBe(c2.fingerprint256);
    expect(c1.publicKey.export({ format: 'der', type: 'spki' }).equals(c2.publicKey.export({ format: 'der', type: 'spki' }))).toBe(false);
    expect(mode(join(d1, 'ca', 'ca.key'))).toBe(0o600);
    const again = sightline(['--data-dir', d1, 'ca', 'init']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--force/);
    expect(sightline(['--data-dir', d1, 'ca', 'init', '--force']).code).toBe(0);
  });

  test('ca export writes PEM, DER and PKCS#12 without the key', () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    sightline(['--data-dir', d, 'ca', 'init']);
    for (const format of ['pem', 'der', 'p12']) {
      const out = join(d, `ca.${format}`);
      expect(sightline(['--data-dir', d, 'ca', 'export', '--format', format, '--out', out]).code).toBe(0);
      expect(statSync(out).size).toBeGreaterThan(200);
    }
    expect(new X509Certificate(readFileSync(join(d, 'ca.der'))).ca).toBe(true);
    const p12 = spawnSync('openssl', ['pkcs12', '-in', join(d, 'ca.p12'), '-passin', 'pass:', '-nokeys', '-info'], { encoding: 'utf8' });
    expect(p12.stdout + p12.stderr).toMatch(/BEGIN CERTIFICATE/);
    expect(p12.stdout + p12.stderr).not.toMatch(/PRIVATE KEY/);
    expect(sightline(['--data-dir', d, 'ca', 'export', '--format', 'pdf']).code).toBe(1);
  });
  test('a server.key readable by group or others is refused like ssh: the file, its mode and the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    expect(sightline(['--data-dir', dir, 'peer', 'list']).code).toBe(0);
    const key = join(dir, 'server.key');
    chmodSync(key, 0o644);
    const r = sightline(['--data-dir', dir, 'peer', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${key}: permissions 0644 are too open`);
    expect(r.stderr).toContain(`chmod 600 ${key}`);
    chmodSync(key, 0o600);
    expect(sightline(['--data-dir', dir, 'peer', 'list']).code).toBe(0);
  });

  test('ca export --p12-password-file reads the password from a file, and excludes --p12-password', () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    sightline(['--data-dir', d, 'ca', 'init']);
    const pwFile = join(d, 'p12.pw');
    writeFileSync(pwFile, 's3cret pw\n', { mode: 0o600 });
    const out = join(d, 'ca.p12');
    expect(sightline(['--data-dir', d, 'ca', 'export', '--format', 'p12', '--out', out, '--p12-password-file', pwFile]).code).toBe(0);
    const ok = spawnSync('openssl', ['pkcs12', '-in', out, '-passin', 'pass:s3cret pw', '-nokeys'], { encoding: 'utf8' });
    expect(ok.stdout).toMatch(/BEGIN CERTIFICATE/);
    const both = sightline(['--data-dir', d, 'ca', 'export', '--format', 'p12', '--out', out, '--p12-password', 'x', '--p12-password-file', pwFile]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/cannot be used with/);
  });
  test('ca import with an unreadable --cert or --key names the option and the file (exit 1)', () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    const missing = join(d, 'nope.key');
    const r = sightline(['--data-dir', d, 'ca', 'import', '--cert', missing, '--key', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read --cert ${missing}: ENOENT`);
  });

  test('peer add NAME takes the options of device add NAME --name default (--public-key, --expires, --qr-png)', () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    const pub = 'v2fQX6Q8DCu+OP6OEarqUIX6UOcHnTYxMbdEKyUUPG4=';
    const own = sightline(['--data-dir', d, 'peer', 'add', 'dana', '--endpoint', '1.2.3.4:51820', '--public-key', pub, '--expires', '30d', '--no-psk']);
    expect(own.code).toBe(0);
    expect(own.stdout).not.toMatch(/^PrivateKey =/m);
    expect(own.stdout).not.toMatch(/^PresharedKey =/m);
    const png = join(d, 'erin.png');
    expect(sightline(['--data-dir', d, 'peer', 'add', 'erin', '--endpoint', '1.2.3.4:51820', '--qr-png', png]).code).toBe(0);
    expect(mode(png)).toBe(0o600);
    const qr = spawnSync('zbarimg', ['--quiet', '--raw', '--nodbus', png], { encoding: 'utf8' });
    expect(qr.stdout).toMatch(/^PrivateKey = /m);
    const devices = JSON.parse(sightline(['--data-dir', d, 'device', 'list', '--json']).stdout) as Array<{ user: string; device: string; publicKey: string; expiresAt: string | null }>;
    expect(devices.map((r) => [r.user, r.device])).toEqual([['dana', 'default'], ['erin', 'default']]);
    expect(devices[0].publicKey).toBe(pub);
    expect(devices[0].expiresAt).not.toBeNull();
    expect(sightline(['--data-dir', d, 'peer', 'add', 'dana', '--endpoint', '1.2.3.4:51820']).stderr).toMatch(/a peer named "dana" already exists/);
  });

  test('SIGHTLINE_CA_PASSPHRASE read by start is gone from the running concentrator\'s /proc/PID/environ', async () => {
    const d = mkdtempSync(join(tmpdir(), 'cli-'));
    const secret = 'ca-pass-7f3e9b1d';
    expect(sightline(['--data-dir', d, 'ca', 'init'], { SIGHTLINE_CA_PASSPHRASE: secret }).code).toBe(0);
    expect(readFileSync(join(d, 'ca', 'ca.key'), 'utf8')).toMatch(/ENCRYPTED/);
    const port = await freeUdpPort();
    writeFileSync(join(d, 'sightline.yaml'), `listenPort: ${port}\nlistenAddress: 127.0.0.1\nadmin:\n  listen: "off"\ndns:\n  upstream: ["127.0.0.1:53"]\n`);
    const child = spawn('node', [BIN, '--data-dir', d, 'start'], { env: { ...process.env, SIGHTLINE_CA_PASSPHRASE: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const deadline = Date.now() + 30_000;
      while (!out.includes('listening on UDP') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('listening on UDP'); // the encrypted CA key was opened with the passphrase
      const environ = readFileSync(`/proc/${child.pid}/environ`, 'latin1');
      expect(environ).not.toContain(secret);
      expect(environ).not.toContain('SIGHTLINE_CA_PASSPHRASE=');
      expect(environ).toContain('PATH='); // the rest of the environment is untouched
    } finally {
      child.kill('SIGTERM');
    }
  });
});

/** A UDP port nothing listens on right now (the kernel picks it). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
