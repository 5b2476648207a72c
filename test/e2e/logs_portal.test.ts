// Issue 10, the auditor's and the employee's side, through the tunnel with
// the official wireguard-go: DNS and sessions land in the user's log with
// the device named, `sightline logs` reads them, /metrics is Prometheus text
// showing the peers connected, the portal page fetched by headless Chromium
// inside the device's namespace shows the CA fingerprint and that user's
// decisions only, and a clean SIGTERM restart loses no record.
import Ajv2020 from 'ajv/dist/2020';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { parsePrometheusText } from '../helpers/prom_text';
import { ORIGIN_V4, ROOT, SERVER_V4, SERVER_V6, Topology, ping, type Client } from '../helpers/topology';
import { waitFor } from '../../scripts/lab/netns';

jest.setTimeout(300_000);

const WEB_PORT = 8080;
const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'log-schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);

type Rec = Record<string, unknown>;

describeE2E('per-user logs, metrics and the employee portal through the tunnel', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping', 'dig', 'dnsmasq', 'curl', 'chromium'], () => {
  const t = new Topology();
  let alice: Client;
  let bob: Client;

  /** `sightline logs USER --json ...` through the CLI. */
  function logs(user: string, args: string[] = []): Rec[] {
    const r = t.sightline(['logs', user, '--json', ...args]);
    if (r.code !== 0) throw new Error(`sightline logs ${user} failed: ${r.stderr}`);
    return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Rec);
  }

  function metrics(): ReturnType<typeof parsePrometheusText> {
    return parsePrometheusText(t.conc.execOk('curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:9810/metrics']));
  }

  /** The portal page as headless Chromium renders it inside the client's namespace. */
  function chromiumDom(c: Client, url: string): string {
    const profile = mkdtempSync(join(tmpdir(), 'sightline-chromium-'));
    try {
      const r = c.ns.exec('chromium', [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', url,
      ], { timeoutMs: 90_000 });
      if (!r.stdout.includes('</html>')) throw new Error(`chromium printed no page (exit ${r.code}): ${r.stderr.slice(-800)}`);
      return r.stdout;
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  }

  beforeAll(async () => {
    t.setup();
    t.origin.spawn('dnsmasq', ['-k', '--no-resolv', '--no-hosts', '--port=53', `--listen-address=${ORIGIN_V4}`, '--bind-interfaces',
      '--address=/intranet.corp.test/10.9.8.7', '--address=/missing.corp.test/']);
    t.origin.spawn('node', ['-e', `for (const p of [${WEB_PORT}, ${WEB_PORT + 1}]) require('http').createServer((q, s) => s.end('hi ' + p)).listen(p, '0.0.0.0')`]);
    await t.startConcentrator();
    alice = await t.client('alice/laptop', (ep) => t.addDevice('alice', ep, ['--name', 'laptop']));
    bob = await t.client('bob', (ep) => t.addDevice('bob', ep));
    expect(ping(alice, SERVER_V4)).toBe(true);
    expect(ping(bob, SERVER_V4)).toBe(true);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test("a device's handshake is a session up record naming the user's device and its endpoint", async () => {
    const up = await waitFor('session up', () => logs('alice', ['--type', 'session']).find((r) => r.event === 'up'), 10_000, 200);
    expect(up).toMatchObject({ user: 'alice', device: 'laptop', endpoint: expect.stringContaining(alice.underlay) });
    expect(typeof up.peer).toBe('string');
  });

  test('DNS through the tunnel is logged: name, type, rcode, answers, upstream', async () => {
    expect(alice.ns.execOk('dig', ['+short', '+time=2', '+tries=2', `@${SERVER_V4}`, 'intranet.corp.test', 'A']).trim()).toBe('10.9.8.7');
    alice.ns.exec('dig', ['+time=2', '+tries=1', `@${SERVER_V6}`, 'missing.corp.test', 'AAAA']);
    const dns = await waitFor('two dns records', () => {
      const r = logs('alice', ['--type', 'dns']);
      return r.length >= 2 ? r : undefined;
    }, 10_000, 200);
    expect(dns.find((r) => r.name === 'intranet.corp.test')).toMatchObject({ device: 'laptop', qtype: 'A', rcode: 'NOERROR', answers: 1, upstream: `${ORIGIN_V4}:53` });
    expect(dns.find((r) => r.name === 'missing.corp.test')).toMatchObject({ qtype: 'AAAA', rcode: 'NXDOMAIN', answers: 0 });
    expect(logs('bob', ['--type', 'dns'])).toEqual([]);
  });

  test('sightline logs reads the records as readable lines too, filtered by --grep', () => {
    const r = t.sightline(['logs', 'alice', '--grep', 'INTRANET.corp']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}laptop {2}dns +name=intranet\.corp\.test qtype=A rcode=NOERROR answers=1 /)]);
  });

  test('/metrics on the admin address parses as Prometheus text and shows the peers connected', async () => {
    const m = await waitFor('two peers connected', () => {
      const x = metrics();
      return x.value('sightline_peers_connected') === 2 ? x : undefined;
    }, 10_000, 300);
    expect(m.value('sightline_peers_configured')).toBe(2);
    expect(m.value('sightline_handshakes_total')).toBeGreaterThanOrEqual(2);
    expect(m.value('sightline_bytes_total', { direction: 'in' })).toBeGreaterThan(0);
    expect(m.value('sightline_dns_queries_total', { outcome: 'received' })).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(t.conc.execOk('curl', ['-sS', 'http://127.0.0.1:9810/healthz']))).toMatchObject({ status: 'ok', connected: 2 });
  });

  test("the portal, fetched by headless Chromium through the tunnel, shows the CA fingerprint and the user's own decisions only", async () => {
    expect(alice.ns.execOk('curl', ['-sS', '--max-time', '10', `http://${ORIGIN_V4}:${WEB_PORT}/`])).toBe(`hi ${WEB_PORT}`);
    expect(bob.ns.execOk('curl', ['-sS', '--max-time', '10', `http://${ORIGIN_V4}:${WEB_PORT + 1}/`])).toBe(`hi ${WEB_PORT + 1}`);
    await waitFor('both flows recorded', () => (logs('alice', ['--type', 'flow']).length > 0 && logs('bob', ['--type', 'flow']).length > 0 ? true : undefined), 10_000, 200);
    const fingerprint = /^fingerprint: (SHA-256 [0-9A-F:]+)$/m.exec(t.sightline(['ca', 'show']).stdout)?.[1];
    expect(fingerprint).toMatch(/^SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

    const alicePage = chromiumDom(alice, `http://${SERVER_V4}/`);
    expect(alicePage).toContain(fingerprint);
    expect(alicePage).toMatch(/<b id="user">alice<\/b>/);
    expect(alicePage).toContain(`${ORIGIN_V4}:${WEB_PORT}`);
    expect(alicePage).not.toContain(`${ORIGIN_V4}:${WEB_PORT + 1}`);
    expect(alicePage).toMatch(/laptop <span class="muted">\(this device\)<\/span>/);

    const bobPage = chromiumDom(bob, `http://${SERVER_V4}/`);
    expect(bobPage).toMatch(/<b id="user">bob<\/b>/);
    expect(bobPage).toContain(`${ORIGIN_V4}:${WEB_PORT + 1}`);
    expect(bobPage).not.toContain(`${ORIGIN_V4}:${WEB_PORT}<`);
    expect(bobPage).not.toContain('laptop');
  });

  test('the portal answers on the IPv6 tunnel address too, and serves the CA', () => {
    expect(alice.ns.execOk('curl', ['-sS', '-g', '--max-time', '10', `http://[${SERVER_V6}]/`])).toMatch(/<b id="user">alice<\/b>/);
    const pem = alice.ns.execOk('curl', ['-sS', '--max-time', '10', `http://${SERVER_V4}/ca.pem`]);
    expect(pem).toBe(t.sightline(['ca', 'export', '--format', 'pem']).stdout);
  });

  test("the portal says what the running policy never decrypts for the user asking, and a SIGHUP with an admin's rules changes it", async () => {
    const notDecrypted = (c: Client): string => {
      const page = c.ns.execOk('curl', ['-sS', '--max-time', '10', `http://${SERVER_V4}/`]);
      return /<ul id="not-decrypted">(.*?)<\/ul>/s.exec(page)?.[1] ?? '';
    };
    // The built-in defaults: the privacy categories.
    expect(notDecrypted(alice)).toMatch(/Finance sites.*Health sites/s);
    const generation = t.status().policy?.generation ?? 0;
    t.writeConfig([
      'groups:',
      '  legal: [bob]',
      'policy:',
      '  rules:',
      '    - { id: legal-portal, action: bypass, groups: [legal], hosts: [court.example] }',
      '    - { id: privacy, action: bypass, categories: [privacy-finance] }',
      '    - { id: inspect-tls, action: inspect, protocol: tcp, ports: [443] }',
      '    - { id: allow-rest, action: allow }',
    ].join('\n'));
    t.concProcess?.kill('SIGHUP');
    await t.statusWhere('the reloaded policy', (s) => (s.policy?.generation ?? 0) > generation, 15_000);
    const alicesList = notDecrypted(alice);
    expect(alicesList).toContain('Finance sites');
    expect(alicesList).not.toContain('Health sites');
    expect(alicesList).not.toContain('court.example');
    expect(notDecrypted(bob)).toMatch(/The sites court\.example.*Finance sites/s);
  });

  test('a clean SIGTERM restart loses no record, and the client resumes with a new session', async () => {
    // A burst of DNS queries, answered, then SIGTERM at once: every answered query must be in the log.
    const before = logs('alice', ['--type', 'dns']).length;
    const burst = `
      const d = require('dgram'); const s = d.createSocket('udp4'); let answered = 0;
      const q = (i) => { const name = Buffer.concat(['burst' + i, 'corp', 'test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
        return Buffer.concat([Buffer.from([i >> 8, i & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 0, 1, 0, 1])]); };
      s.on('message', () => { answered++; });
      s.connect(53, '${SERVER_V4}', () => { for (let i = 0; i < 200; i++) s.send(q(i)); });
      setTimeout(() => { console.log(answered); process.exit(0); }, 3000);`;
    const answered = Number(alice.ns.execOk('node', ['-e', burst], { timeoutMs: 20_000 }).trim());
    expect(answered).toBeGreaterThan(100);
    await t.stopConcentrator();
    const after = logs('alice', ['--type', 'dns']);
    expect(after.length - before).toBeGreaterThanOrEqual(answered);
    expect(logs('alice', ['--type', 'session']).pop()).toMatchObject({ event: 'down', reason: 'shutdown', device: 'laptop' });

    await t.startConcentrator();
    // wireguard-go notices the server lost its session on its own and handshakes again (no new config).
    await waitFor('alice resumed', () => (ping(alice, SERVER_V4) ? true : undefined), 60_000, 500);
    await waitFor('a new session up', () => (logs('alice', ['--type', 'session']).pop()?.event === 'up' ? true : undefined), 15_000, 200);
  });

  test('every line written in this run validates against docs/log-schema.json', () => {
    const dir = join(t.dataDir, 'logs');
    const lines = readdirSync(dir).filter((n) => n.endsWith('.ndjson')).flatMap((n) => readFileSync(join(dir, n), 'utf8').trim().split('\n'));
    expect(lines.length).toBeGreaterThan(200);
    const bad = lines.map((l) => JSON.parse(l) as Rec).filter((r) => !validate(r));
    expect(bad).toEqual([]);
  });
});
