// Client configs: what `device add` hands an employee, as wg-quick text or a
// QR code for the phone apps (decoded here with zbarimg, as a phone would).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionDevice, qrPng, qrTerminal } from '../../../../vpn/control';
import { PrivateKey } from '../../../../vpn/protocol';
import { tempDeployment } from './fixture';

const ENDPOINT = 'vpn.example.com:51820';

describe('device configs', () => {
  test('a generated key pair: the config holds the private key, the store only the public key', () => {
    const d = tempDeployment();
    const { clientConfig, device } = provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    const priv = /^PrivateKey = (.+)$/m.exec(clientConfig)?.[1] ?? '';
    expect(PrivateKey.fromBase64(priv).publicKey().toBase64()).toBe(device.publicKey);
    expect(JSON.stringify(d.store.db.prepare('SELECT * FROM devices').all())).not.toContain(priv);
    d.store.close();
  });

  test('the config names the device and routes everything through the tunnel', () => {
    const d = tempDeployment();
    provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    const conf = provisionDevice(d, { user: 'alice', device: 'phone', endpoint: ENDPOINT }).clientConfig;
    const lines = conf.split('\n').map((l) => l.replace(/ = [A-Za-z0-9+/]{43}=$/, ' = KEY'));
    expect(lines).toEqual([
      '[Interface]', '# Sightline peer "alice/phone"', 'PrivateKey = KEY', 'Address = 10.77.0.3/32, fd77:1:2::3/128',
      'DNS = 10.77.0.1, fd77:1:2::1', 'MTU = 1420', '', '[Peer]', 'PublicKey = KEY', 'PresharedKey = KEY',
      'AllowedIPs = 0.0.0.0/0, ::/0', `Endpoint = ${ENDPOINT}`, 'PersistentKeepalive = 25', '',
    ]);
    d.store.close();
  });

  test('--public-key: no PrivateKey line, and the config says why and where it goes', () => {
    const d = tempDeployment();
    const own = PrivateKey.generate().publicKey().toBase64();
    const { clientConfig, device } = provisionDevice(d, { user: 'bob', publicKey: own, endpoint: ENDPOINT });
    expect(device.publicKey).toBe(own);
    expect(clientConfig).not.toMatch(/^PrivateKey/m);
    expect(clientConfig).toContain(`# No PrivateKey: this device generated its own key pair (public key ${own}).`);
    expect(clientConfig).toContain('# Add "PrivateKey = <its private key>" here');
    d.store.close();
  });

  test.each([
    ['not base64', 'hello', /invalid --public-key "hello": expected the device's WireGuard public key/],
    ['the wrong length', Buffer.alloc(16, 1).toString('base64'), /invalid --public-key/],
    ['a low-order point', Buffer.alloc(32).toString('base64'), /low-order point/],
  ])('--public-key that is %s is refused', (_what, key, message) => {
    const d = tempDeployment();
    expect(() => provisionDevice(d, { user: 'bob', publicKey: key, endpoint: ENDPOINT })).toThrow(message);
    d.store.close();
  });

  test("--public-key equal to the concentrator's own key is refused", () => {
    const d = tempDeployment();
    const key = d.serverKey.publicKey().toBase64();
    expect(() => provisionDevice(d, { user: 'bob', publicKey: key, endpoint: ENDPOINT })).toThrow(/concentrator's own public key/);
    d.store.close();
  });

  test('a public key already used by another device is refused, naming that device', () => {
    const d = tempDeployment();
    const key = PrivateKey.generate().publicKey().toBase64();
    provisionDevice(d, { user: 'alice', device: 'laptop', publicKey: key, endpoint: ENDPOINT });
    expect(() => provisionDevice(d, { user: 'bob', publicKey: key, endpoint: ENDPOINT })).toThrow(/already used by device "laptop" of user "alice"/);
    d.store.close();
  });

  test('--no-psk leaves out the PresharedKey line', () => {
    const d = tempDeployment();
    expect(provisionDevice(d, { user: 'alice', presharedKey: false, endpoint: ENDPOINT }).clientConfig).not.toMatch(/PresharedKey/);
    d.store.close();
  });
});

describe('device names and users', () => {
  test('without --name the first device is "default", then device2, device3 (gaps are filled)', () => {
    const d = tempDeployment();
    const names = [1, 2, 3].map(() => provisionDevice(d, { user: 'alice', endpoint: ENDPOINT }).device.name);
    expect(names).toEqual(['default', 'device2', 'device3']);
    d.store.db.prepare("DELETE FROM devices WHERE name = 'device2'").run();
    expect(provisionDevice(d, { user: 'alice', endpoint: ENDPOINT }).device.name).toBe('device2');
    d.store.close();
  });

  test('device add creates a missing user and says so; a second device does not', () => {
    const d = tempDeployment();
    expect(provisionDevice(d, { user: 'alice', endpoint: ENDPOINT }).userCreated).toBe(true);
    expect(provisionDevice(d, { user: 'alice', endpoint: ENDPOINT }).userCreated).toBe(false);
    d.store.close();
  });

  test('a device name used twice by one user is refused; another user may use it', () => {
    const d = tempDeployment();
    provisionDevice(d, { user: 'alice', device: 'laptop', endpoint: ENDPOINT });
    expect(() => provisionDevice(d, { user: 'alice', device: 'laptop', endpoint: ENDPOINT })).toThrow('user "alice" already has a device named "laptop"');
    expect(provisionDevice(d, { user: 'bob', device: 'laptop', endpoint: ENDPOINT }).device.name).toBe('laptop');
    d.store.close();
  });

  test.each(['../etc', 'a b', '', 'x'.repeat(65), 'alice/phone'])('the name %j is refused', (name) => {
    const d = tempDeployment();
    expect(() => provisionDevice(d, { user: name, endpoint: ENDPOINT })).toThrow(/invalid user name/);
    expect(() => provisionDevice(d, { user: 'alice', device: name, endpoint: ENDPOINT })).toThrow(/invalid device name/);
    d.store.close();
  });
});

// zbarimg (Debian zbar-tools) plays the phone: what it decodes is what the app imports.
const haveZbar = spawnSync('zbarimg', ['--version']).status === 0;
if (!haveZbar && process.env.CI !== 'true') console.warn('skipping QR decoding: zbarimg missing (apt-get install zbar-tools)');
const describeQr = haveZbar || process.env.CI === 'true' ? describe : describe.skip;

function decode(file: string): string {
  const r = spawnSync('zbarimg', ['--quiet', '--raw', '--nodbus', file], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`zbarimg found no QR code in ${file}: ${r.stderr}`);
  return r.stdout.replace(/\n$/, ''); // zbarimg ends each symbol's data with a newline
}

/** The terminal rendering (half blocks, ANSI colours) back into a bitmap zbarimg can read. */
function terminalToPbm(text: string): string {
  const rows: boolean[][] = [];
  for (const line of text.split('\n').filter((l) => /[▀▄█ ]/.test(l.replace(/\x1b\[\d+m/g, '')))) {
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    let ink = true; // foreground black: what a half block draws is dark
    for (const token of line.match(/\x1b\[\d+m|./gu) ?? []) {
      if (token.startsWith('\x1b')) {
        ink = token === '\x1b[30m' ? true : token === '\x1b[37m' || token === '\x1b[0m' ? false : ink;
        continue;
      }
      top.push(ink && (token === '▀' || token === '█'));
      bottom.push(ink && (token === '▄' || token === '█'));
    }
    rows.push(top, bottom);
  }
  const margin = 4;
  const scale = 4;
  const width = (Math.max(...rows.map((r) => r.length)) + 2 * margin) * scale;
  const out: string[] = [];
  const padded = [...Array<boolean[]>(margin).fill([]), ...rows, ...Array<boolean[]>(margin).fill([])];
  for (const row of padded) {
    const pixels = Array.from({ length: width / scale }, (_, x) => (row[x - margin] ? '1' : '0'));
    const line = pixels.flatMap((p) => Array<string>(scale).fill(p)).join(' ');
    for (let i = 0; i < scale; i++) out.push(line);
  }
  return `P1\n${width} ${padded.length * scale}\n${out.join('\n')}\n`;
}

describeQr('QR codes of the config', () => {
  test('the PNG decodes to exactly the config text', async () => {
    const d = tempDeployment();
    const { clientConfig } = provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    const file = join(mkdtempSync(join(tmpdir(), 'sightline-qr-')), 'alice.png');
    writeFileSync(file, await qrPng(clientConfig));
    expect(decode(file)).toBe(clientConfig);
    d.store.close();
  });

  test('the terminal rendering decodes to exactly the config text', async () => {
    const d = tempDeployment();
    const { clientConfig } = provisionDevice(d, { user: 'alice', device: 'phone', endpoint: ENDPOINT });
    const file = join(mkdtempSync(join(tmpdir(), 'sightline-qr-')), 'terminal.pbm');
    writeFileSync(file, terminalToPbm(await qrTerminal(clientConfig)));
    expect(decode(file)).toBe(clientConfig);
    d.store.close();
  });
});
