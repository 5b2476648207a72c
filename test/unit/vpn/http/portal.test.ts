// The employee portal, fed TCP streams the way the stack hands them over: a
// page for the flow's owner only (no login, never another user's data), the
// company CA in three formats with the fingerprint as `ca show` prints it,
// escaped values, no scripts or external assets, and bounded connections.
// What is not decrypted comes from the running policy, for the user asking.
import { X509Certificate, createHash } from 'node:crypto';
import { request } from 'node:http';
import * as net from 'node:net';
import { IpAddress } from '../../../../netstack/wire';
import type { TcpFlowInfo } from '../../../../netstack';
import { RecentDecisions } from '../../../../vpn/http/decisions';
import { Portal } from '../../../../vpn/http/portal';
import { inspectionScope } from '../../../../vpn/http/scope';
import { defaultConfig, parseConfigText } from '../../../../vpn/config';
import { PolicyHolder, compilePolicy } from '../../../../policy';
import { ensureCa, exportCa } from '../../../../mitm';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';
import { asGenericDuplex } from '../../mitm/engine_harness';
import { TempDir } from '../../policy/helpers';

const policyDir = new TempDir();
afterAll(() => {
  removeTempDirs();
  policyDir.cleanup();
});

const T = Date.UTC(2026, 11, 1, 9, 0, 0);
const dataDir = tempDir('sightline-portal-');
const ca = ensureCa(dataDir).ca;
const decisions = new RecentDecisions({ inspectPorts: new Set([443]), localAddresses: new Set(['10.77.0.1']) });
/** The concentrator's running policy: the built-in defaults until a test reloads the admin's rules. */
const config = defaultConfig();
const policy = new PolicyHolder(compilePolicy(config));
const portal = new Portal({
  ca: {
    pem: exportCa(dataDir, 'pem'), der: exportCa(dataDir, 'der'), p12: exportCa(dataDir, 'p12'),
    fingerprint: `SHA-256 ${ca.fingerprint}`, subject: 'CN=Test CA', validTo: 'Dec 1 00:00:00 2036 GMT', organization: 'Acme <Corp>',
  },
  scopeOf: (user) => inspectionScope(config, policy.current, user),
  decisions,
  devicesOf: (user, ownerId) => (user === 'alice'
    ? [{ name: 'laptop', ipv4: '10.77.0.2', ipv6: 'fd77::2', state: 'active', connected: true, lastHandshake: new Date(Date.now() - 30_000).toISOString(), current: ownerId === 'KEY-A' },
      { name: 'phone', ipv4: '10.77.0.3', ipv6: 'fd77::3', state: 'active', connected: false, lastHandshake: null, current: ownerId === 'KEY-P' }]
    : [{ name: 'desktop', ipv4: '10.77.0.9', ipv6: 'fd77::9', state: 'active', connected: true, lastHandshake: null, current: true }]),
});

/** The items of the page's "Not decrypted" list. */
function notDecrypted(html: string): string[] {
  const list = /<ul id="not-decrypted">(.*?)<\/ul>/s.exec(html)?.[1] ?? '';
  return [...list.matchAll(/<li>(.*?)<\/li>/gs)].map((m) => m[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'"));
}

function flowOf(user: string, id: string): TcpFlowInfo {
  return { owner: { id, user }, family: 4, client: IpAddress.parse('10.77.0.2'), clientPort: 40000, dst: IpAddress.parse('10.77.0.1'), dstPort: 80, local: true };
}

/** A loopback listener plays the stack: each accepted connection is a portal flow of `who`, handed over as a plain Duplex (no socket methods), as the stack does. */
async function portalFor(who: { user: string; id: string }): Promise<{ port: number; close: () => void; refused: () => number }> {
  let refused = 0;
  const server = net.createServer((sock) => {
    portal.handlerFor(flowOf(who.user, who.id))(flowOf(who.user, who.id)).then((up) => up.attach(asGenericDuplex(sock)), () => {
      refused++;
      sock.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close(), refused: () => refused };
}

function fetch(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const rec = (user: string, type: string, fields: Record<string, unknown>) => ({ type, time: T, user, peer: 'K', device: null, fields });

beforeAll(() => {
  decisions.observe(rec('alice', 'flow_end', { mode: 'inspect', result: 'closed', host: 'news.example', issuer: 'company', bytesFromClient: 1 }));
  decisions.observe(rec('alice', 'flow_end', { mode: 'bypass', result: 'closed', host: 'pinned.example' }));
  decisions.observe(rec('alice', 'flow_end', { mode: 'inspect', result: 'upstream_rejected', reason: 'expired', host: '<script>alert(1)</script>.example' }));
  decisions.observe(rec('alice', 'flow', { dst: '192.0.2.7', dstPort: 22 }));
  decisions.observe(rec('alice', 'flow', { dst: '10.77.0.1', dstPort: 80 }));
  decisions.observe(rec('alice', 'dns', { name: 'x.example' }));
  decisions.observe(rec('bob', 'flow_end', { mode: 'inspect', result: 'closed', host: 'bobs-secret.example', issuer: 'company', bytesFromClient: 1 }));
});

describe("alice's page", () => {
  let p: Awaited<ReturnType<typeof portalFor>>;
  let html: string;
  beforeAll(async () => {
    p = await portalFor({ user: 'alice', id: 'KEY-A' });
    const res = await fetch(p.port, '/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    html = res.body.toString();
  });
  afterAll(() => p.close());

  test('names the user the tunnel authenticated and shows the CA fingerprint exactly as `ca show` prints it', () => {
    expect(html).toContain('<b id="user">alice</b>');
    expect(html).toContain(`SHA-256 ${ca.fingerprint}`);
  });

  test('shows her decisions, newest first, with plain-word actions; never DNS queries or the portal itself', () => {
    const rows = [...html.matchAll(/<tr><td>[^<]*<\/td><td>([^<]*)<\/td><td class="[^"]*">([^<]*)<\/td>/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      ['192.0.2.7:22', 'passed'],
      ['&lt;script&gt;alert(1)&lt;/script&gt;.example', 'blocked'],
      ['pinned.example', 'not decrypted'],
      ['news.example', 'inspected'],
    ]);
  });

  test("never shows another user's decisions or devices", () => {
    expect(html).not.toContain('bobs-secret');
    expect(html).not.toContain('desktop');
  });

  test('lists her devices with last handshakes and marks the one asking', () => {
    expect(html).toMatch(/laptop <span class="muted">\(this device\)<\/span>.*30 s ago/s);
    expect(html).toMatch(/phone<\/td>.*never/s);
  });

  test('says what is inspected, and what the built-in policy never decrypts: finance and health sites, pinned apps', () => {
    expect(html).toContain('TCP port 443');
    expect(notDecrypted(html)).toEqual([
      'Finance sites: banks, brokers and payment providers',
      'Health sites: health insurers, patient portals, telehealth and lab results',
      expect.stringMatching(/^Apps known to pin their certificates \(\d+ sites on the shipped list\)$/),
      expect.stringMatching(/^Apps that refuse the company certificate/),
      expect.stringMatching(/^Sites that ask your device for its own certificate/),
    ]);
  });

  test('has no script, no external asset, and escapes every value', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).toContain('Acme &lt;Corp&gt; VPN');
  });

  test('the CA downloads: PEM, DER and PKCS#12 of the same certificate', async () => {
    const pem = await fetch(p.port, '/ca.pem');
    const der = await fetch(p.port, '/ca.der');
    const p12 = await fetch(p.port, '/ca.p12');
    expect([pem.status, der.status, p12.status]).toEqual([200, 200, 200]);
    expect(new X509Certificate(pem.body).fingerprint256).toBe(ca.fingerprint);
    expect(createHash('sha256').update(der.body).digest('hex')).toBe(ca.fingerprint.replace(/:/g, '').toLowerCase());
    expect(p12.headers['content-type']).toBe('application/x-pkcs12');
    expect(p12.body.length).toBeGreaterThan(der.body.length);
  });

  test('answers with headers that forbid scripts, framing and caching', async () => {
    const res = await fetch(p.port, '/');
    expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('other methods and paths are refused', async () => {
    expect((await fetch(p.port, '/', 'POST')).status).toBe(405);
    expect((await fetch(p.port, '/../../etc/passwd')).status).toBe(404);
  });

  test('an oversized request head is refused, not buffered', async () => {
    const res = await fetch(p.port, '/', 'GET', { 'x-pad': 'a'.repeat(20_000) }).catch(() => ({ status: 0 }));
    expect([0, 431]).toContain(res.status);
  });
});

test("bob's page shows bob's data only", async () => {
  const p = await portalFor({ user: 'bob', id: 'KEY-B' });
  const html = (await fetch(p.port, '/')).body.toString();
  p.close();
  expect(html).toContain('bobs-secret.example');
  expect(html).not.toContain('news.example');
  expect(html).not.toContain('laptop');
});

test('a user holds at most 8 portal connections at once; more are refused', async () => {
  const p = await portalFor({ user: 'carol', id: 'KEY-C' });
  const socks = await Promise.all(Array.from({ length: 10 }, () => new Promise<net.Socket>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1', () => resolve(s));
    s.on('error', () => undefined);
  })));
  for (let i = 0; i < 50 && p.refused() < 2; i++) await new Promise((r) => setTimeout(r, 20));
  expect(p.refused()).toBe(2);
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  expect((await fetch(p.port, '/')).status).toBe(200);
  p.close();
});

test("after a reload, the page lists the admin's exemptions that apply to the user asking, in rule order, and no other's", async () => {
  policyDir.write('banks.txt', 'bank.example\nbroker.example\n');
  const yaml = `groups:
  legal: [bob]
policy:
  categories:
    our-banks: banks.txt
  rules:
    - { id: legal-portal, action: bypass, groups: [legal], hosts: [court.example, "*.lawfirm.example"] }
    - { id: banks, action: bypass, categories: [our-banks, privacy-health] }
    - { id: hr-db, action: allow, dst: [10.20.0.0/16], ports: [443] }
    - { id: ssh, action: allow, ports: [22] }
    - { id: blocked, action: block, hosts: [casino.example] }
    - { id: inspect-tls, action: inspect, protocol: tcp, ports: [443] }
    - { id: allow-rest, action: allow }
`;
  const reloaded = policy.reload(() => parseConfigText(yaml, `${policyDir.path}/sightline.yaml`));
  expect(reloaded.ok).toBe(true);
  const pageOf = async (who: { user: string; id: string }) => {
    const p = await portalFor(who);
    try {
      return notDecrypted((await fetch(p.port, '/')).body.toString()).slice(0, -3);
    } finally {
      p.close();
    }
  };
  expect(await pageOf({ user: 'bob', id: 'KEY-B' })).toEqual([
    'The sites court.example, every site under lawfirm.example',
    'Sites in the company\'s list "our-banks" (2 sites)',
    'Health sites: health insurers, patient portals, telehealth and lab results',
    'Connections to 10.20.0.0/16 on port 443',
  ]);
  expect(await pageOf({ user: 'alice', id: 'KEY-A' })).toEqual([
    'Sites in the company\'s list "our-banks" (2 sites)',
    'Health sites: health insurers, patient portals, telehealth and lab results',
    'Connections to 10.20.0.0/16 on port 443',
  ]);
});
