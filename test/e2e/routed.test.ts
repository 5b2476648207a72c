// Issue 11: routed mode end to end. A stock wireguard-go client in a
// namespace, the concentrator with egress.mode routed in another (a TUN, the
// kernel forwarding, nftables), origins beyond it. Shown: what only routed
// mode can do (ping beyond the concentrator, the client's own address seen
// by the network with nat none), that inspection, QUIC refusal, the egress
// guard and policy blocks still hold, and that the host is left as it was
// found after SIGTERM and after SIGKILL followed by a start.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { echoProbe as echo, probe, tcpSyn, udpProbe as udp } from '../helpers/raw_ip';
import {
  BIN, CONC_ORIGIN_V4, CONC_ORIGIN_V6, ORIGIN_V4, ORIGIN_V6, POOL_V4, POOL_V6, SERVER_V4, SERVER_V6, Topology, ping, udpExchange, type Client,
} from '../helpers/topology';
import { GOOD_SITES, makeInspectOrigins, startInspectOrigins, type OriginProcess, type InspectOrigins } from '../helpers/inspect_lab';
import { CURL_PEER_FAILED_VERIFICATION, curl, waitForRecord } from '../helpers/inspect_client';
import { sleep, waitFor, type Namespace } from '../../scripts/lab/netns';

jest.setTimeout(300_000);

const TUN = 'sightline0';
/** Origin HTTP and UDP services that answer with the address they were reached from. */
const WHO_PORT = 8090;
const UDP_WHO_PORT = 7007;
const METADATA = '169.254.169.254';
/** Origin addresses that the test policy blocks. */
const BLOCKED_V4 = '10.202.0.4';
const BLOCKED_V6 = 'fd02::4';
/** Services of the concentrator's own host, which tunnel traffic must never reach. */
const LOOPBACK_PORT = 8111;
const HOST_PORT = 8112;
const SITE = GOOD_SITES.find((s) => s.host === 'p256.test') ?? GOOD_SITES[0];

const PROHIBITED_V4 = { src: SERVER_V4, type: 3, code: 13 };
const PROHIBITED_V6 = { src: SERVER_V6, type: 1, code: 1 };

const POLICY = [
  'policy:',
  '  rules:',
  '    - id: no-blocked-origin',
  '      action: block',
  `      dst: ["${BLOCKED_V4}/32", "${BLOCKED_V6}/128"]`,
  '    - id: inspect-tls',
  '      action: inspect',
  '      protocol: tcp',
  '      ports: [443]',
  '    - id: allow-rest',
  '      action: allow',
];

interface RoutedLab {
  origins: InspectOrigins;
  origin: OriginProcess;
  companyCa: string;
  alice: Client;
  /** Requests the origin's plain services saw so far, as "HTTP <local> <remote> <path>" lines. */
  originSeen: () => string;
  /** Anything that reached the concentrator host's own services (must stay empty). */
  hostHits: () => string;
}

/**
 * A routed-mode topology for one describe block, built before its tests and
 * removed after them (even when they fail). `lab` is filled in by then.
 */
function useRoutedLab(nat: 'masquerade' | 'none'): { t: Topology; lab: RoutedLab } {
  const t = new Topology({ routed: { nat } });
  const lab = {} as RoutedLab;
  beforeAll(async () => {
    Object.assign(lab, await startRoutedLab(t));
  });
  afterAll(() => t.cleanup());
  return { t, lab };
}

async function startRoutedLab(t: Topology): Promise<RoutedLab> {
  const origins = makeInspectOrigins(join(t.dataDir, 'pki'));
  t.setup(['tls:', `  upstreamCaFile: ${origins.rootFile}`, ...POLICY].join('\n'));
  const origin = await startInspectOrigins(t, origins);
  let seen = '';
  const who = t.origin.spawn('node', ['-e', whoServices()]);
  who.stdout?.on('data', (c: Buffer) => (seen += c.toString()));
  for (const [a, via] of [[METADATA, ORIGIN_V4], [BLOCKED_V4, ORIGIN_V4], [BLOCKED_V6, ORIGIN_V6]]) {
    t.origin.execOk('ip', ['addr', 'add', a, 'dev', 'lo']);
    t.conc.execOk('ip', ['route', 'add', a, 'via', via]);
  }
  let hits = '';
  const services = t.conc.spawn('node', ['-e', hostServices()]);
  services.stdout?.on('data', (c: Buffer) => (hits += c.toString()));
  await waitFor('origin and host services', () => (seen.includes('READY') && hits.includes('READY') ? true : undefined));
  seen = '';
  hits = '';
  await t.startConcentrator();
  const companyCa = join(t.dataDir, 'company-ca.pem');
  writeFileSync(companyCa, t.sightline(['ca', 'export']).stdout);
  const alice = await t.client('alice');
  await waitFor('alice pings the concentrator', () => (ping(alice, SERVER_V4) ? true : undefined), 30_000, 500);
  return { origins, origin, companyCa, alice, originSeen: () => seen, hostHits: () => hits };
}

describeE2E('routed mode with masquerade', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'ping', 'python3', 'nft', 'openssl'], () => {
  const { t, lab } = useRoutedLab('masquerade');
  let alice: Client;
  beforeAll(() => (alice = lab.alice));

  test('ping reaches an origin beyond the concentrator, IPv4 and IPv6 (socket mode can only answer for itself)', async () => {
    expect(ping(alice, ORIGIN_V4)).toBe(true);
    expect(ping(alice, ORIGIN_V6)).toBe(true);
    await t.statusWhere('packets counted into and out of the TUN', (s) => (s.counters.routed?.to_tun ?? 0) >= 2 && (s.counters.routed?.from_tun ?? 0) >= 2);
  });

  test("TCP passes through the kernel, IPv4 and IPv6; the origin sees the concentrator's address", async () => {
    const since = Date.now();
    expect(curlText(alice, `http://${ORIGIN_V4}:${WHO_PORT}/tcp4`)).toBe(`you are ${CONC_ORIGIN_V4}`);
    expect(curlText(alice, `http://[${ORIGIN_V6}]:${WHO_PORT}/tcp6`)).toBe(`you are ${CONC_ORIGIN_V6}`);
    // Routed, not terminated in userspace: the stack opened no TCP flow for them.
    expect((await statusAfter(t, since)).counters.stack.tcp_flows_opened ?? 0).toBe(0);
  });

  test("UDP passes through the kernel, IPv4 and IPv6; the origin sees the concentrator's address", async () => {
    const since = Date.now();
    expect(udpExchange(alice.ns, ORIGIN_V4, UDP_WHO_PORT, ['u4'])).toEqual([`seen ${CONC_ORIGIN_V4} u4`]);
    expect(udpExchange(alice.ns, ORIGIN_V6, UDP_WHO_PORT, ['u6'])).toEqual([`seen ${CONC_ORIGIN_V6} u6`]);
    expect((await statusAfter(t, since)).counters.stack.udp_flows_opened ?? 0).toBe(0);
  });

  test('HTTPS to an inspected port is still intercepted: the company CA signs what the client sees, and it is logged', async () => {
    await expectInspected(t, lab);
  });

  test('QUIC (UDP to the inspected port) is still refused with port unreachable, so browsers fall back to inspected TCP', () => {
    const errors = probe(alice, [udp(alice.ipv4, ORIGIN_V4, 443)]);
    expect(errors).toEqual([{ src: ORIGIN_V4, type: 3, code: 3, aboutDst: ORIGIN_V4, aboutProtocol: 17 }]);
  });

  test('the hardening rules hold before the TUN: loopback, host addresses and cloud metadata are refused and logged', async () => {
    const errors = probe(alice, [
      tcpSyn(alice.ipv4, '127.0.0.1', LOOPBACK_PORT),
      udp(alice.ipv4, CONC_ORIGIN_V4, HOST_PORT),
      tcpSyn(alice.ipv6, CONC_ORIGIN_V6, HOST_PORT),
      tcpSyn(alice.ipv4, METADATA, 80),
      echo(alice.ipv4, METADATA),
    ]);
    expect(errors).toEqual([
      { ...PROHIBITED_V4, aboutDst: '127.0.0.1', aboutProtocol: 6 },
      { ...PROHIBITED_V4, aboutDst: CONC_ORIGIN_V4, aboutProtocol: 17 },
      { ...PROHIBITED_V6, aboutDst: CONC_ORIGIN_V6, aboutProtocol: 6 },
      { ...PROHIBITED_V4, aboutDst: METADATA, aboutProtocol: 6 },
      { ...PROHIBITED_V4, aboutDst: METADATA, aboutProtocol: 1 },
    ]);
    expect(alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${METADATA}:${WHO_PORT}/meta`]).code).not.toBe(0);
    for (const want of [
      { proto: 'tcp', dst: '127.0.0.1', reason: 'loopback' },
      { proto: 'udp', dst: CONC_ORIGIN_V4, reason: 'host_address' },
      { proto: 'tcp', dst: CONC_ORIGIN_V6, reason: 'host_address' },
      { proto: 'tcp', dst: METADATA, reason: 'link_local' },
      { proto: 'icmp', dst: METADATA, reason: 'link_local' },
    ]) {
      await waitForRecord(t.dataDir, 'alice', `egress_denied ${JSON.stringify(want)}`, (r) => r.type === 'egress_denied' && Object.entries(want).every(([k, v]) => r[k] === v));
    }
    await sleep(300);
    expect(lab.hostHits()).toBe('');
    expect(lab.originSeen()).not.toContain(METADATA);
    expect(curlText(alice, `http://${ORIGIN_V4}:${WHO_PORT}/still`)).toBe(`you are ${CONC_ORIGIN_V4}`);
  });

  test('a policy block holds in routed mode: TCP gets a reset, UDP and ping admin-prohibited, and a policy record names the rule', async () => {
    const refused = alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${BLOCKED_V4}:${WHO_PORT}/`]);
    expect(refused.code).toBe(7); // "Failed to connect": the reset came at once
    expect(alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://[${BLOCKED_V6}]:${WHO_PORT}/`]).code).toBe(7);
    const errors = probe(alice, [udp(alice.ipv4, BLOCKED_V4, UDP_WHO_PORT), echo(alice.ipv6, BLOCKED_V6)]);
    expect(errors).toEqual([
      { ...PROHIBITED_V4, aboutDst: BLOCKED_V4, aboutProtocol: 17 },
      { ...PROHIBITED_V6, aboutDst: BLOCKED_V6, aboutProtocol: 58 },
    ]);
    for (const proto of ['tcp', 'udp', 'icmpv6']) {
      await waitForRecord(t.dataDir, 'alice', `policy block (${proto})`, (r) => r.type === 'policy' && r.action === 'block' && r.rule === 'no-blocked-origin' && r.proto === proto);
    }
    await sleep(300);
    expect(lab.originSeen()).not.toMatch(new RegExp(`${BLOCKED_V4}|${BLOCKED_V6}`));
    await t.statusWhere('the blocks counted', (s) => (s.counters.routed?.policy_block ?? 0) >= 4);
  });

  test('the host is set up: the TUN with the tunnel addresses, the pools routed into it, forwarding, and the nftables table', () => {
    const addrs = t.conc.execOk('ip', ['-o', 'addr', 'show', 'dev', TUN]);
    expect(addrs).toContain(`inet ${SERVER_V4}/24`);
    expect(addrs).toContain(`inet6 ${SERVER_V6}/64`);
    expect(addrs).not.toContain('fe80:');
    expect(t.conc.execOk('ip', ['route'])).toMatch(new RegExp(`^${POOL_V4.replace(/\./g, '\\.')} dev ${TUN} `, 'm'));
    expect(t.conc.execOk('ip', ['-6', 'route'])).toMatch(new RegExp(`^${POOL_V6} dev ${TUN} `, 'm'));
    expect(forwarding(t.conc)).toEqual(['1', '1']);
    const table = t.conc.execOk('nft', ['list', 'table', 'inet', 'sightline']);
    expect(table).toMatch(new RegExp(`iifname "${TUN}" counter packets \\d+ bytes \\d+ drop`));
    expect(table).toMatch(/ip saddr 10\.77\.0\.0\/24 oifname != "sightline0" counter packets [1-9]\d* bytes \d+ masquerade/);
    expect(table).toMatch(/ip6 saddr fd77:1:2::\/64 oifname != "sightline0" counter packets [1-9]\d* bytes \d+ masquerade/);
    const s = t.status();
    expect(s.egress).toMatchObject({ mode: 'routed', interface: TUN, nat: 'masquerade', nftTable: 'inet sightline' });
    expect(t.sightline(['status']).stdout).toMatch(/^egress routed through TUN sightline0 .*NAT masquerade/m);
  });

  test('SIGTERM leaves no interface, route or nftables table behind, and forwarding as it was', async () => {
    await t.stopConcentrator('SIGTERM');
    expectHostClean(t);
  });

  test('after SIGKILL the next start removes the leftovers and sets up again; SIGTERM then leaves nothing', async () => {
    await restart(t, alice);
    await t.stopConcentrator('SIGKILL');
    // What a crash leaves: the table and the sysctls (the TUN went with its file descriptor).
    expect(t.conc.execOk('nft', ['list', 'tables'])).toContain('table inet sightline');
    expect(t.conc.execOk('ip', ['-o', 'link'])).not.toContain(TUN);
    expect(existsSync(join(t.dataDir, 'routed-state.json'))).toBe(true);
    await restart(t, alice);
    await t.outputLine('the leftovers reported', /removed what an earlier run/);
    expect(ping(alice, ORIGIN_V4)).toBe(true);
    await t.stopConcentrator('SIGTERM');
    expectHostClean(t);
  });
});

describeE2E('routed mode without NAT', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'ping', 'python3', 'nft', 'openssl', 'capsh', 'unshare'], () => {
  const { t, lab } = useRoutedLab('none');
  let alice: Client;
  beforeAll(() => (alice = lab.alice));

  test("the origin sees the client's own tunnel address over TCP, UDP and ping, IPv4 and IPv6", () => {
    expect(curlText(alice, `http://${ORIGIN_V4}:${WHO_PORT}/tcp4`)).toBe(`you are ${alice.ipv4}`);
    expect(curlText(alice, `http://[${ORIGIN_V6}]:${WHO_PORT}/tcp6`)).toBe(`you are ${alice.ipv6}`);
    expect(udpExchange(alice.ns, ORIGIN_V4, UDP_WHO_PORT, ['u4'])).toEqual([`seen ${alice.ipv4} u4`]);
    expect(udpExchange(alice.ns, ORIGIN_V6, UDP_WHO_PORT, ['u6'])).toEqual([`seen ${alice.ipv6} u6`]);
    expect(ping(alice, ORIGIN_V4)).toBe(true);
    expect(ping(alice, ORIGIN_V6)).toBe(true);
  });

  test("inspected HTTPS is still opened from the concentrator's own socket, with the company CA toward the client", async () => {
    await expectInspected(t, lab);
  });

  test('the network cannot open a connection to a device through the TUN, while the device reaches the network', () => {
    const listener = alice.ns.spawn('node', ['-e', "require('net').createServer((s) => s.end('device')).listen(8300, '0.0.0.0')"]);
    try {
      const r = t.origin.exec('node', ['-e', connectScript(alice.ipv4, 8300)], { timeoutMs: 15_000 });
      expect(r.stdout.trim()).toBe('refused-or-timeout');
      const table = t.conc.execOk('nft', ['list', 'chain', 'inet', 'sightline', 'forward']);
      expect(table).toMatch(new RegExp(`oifname "${TUN}" counter packets [1-9]\\d* bytes \\d+ drop`));
      expect(curlText(alice, `http://${ORIGIN_V4}:${WHO_PORT}/out`)).toBe(`you are ${alice.ipv4}`);
    } finally {
      listener.kill('SIGKILL');
    }
  });

  test('with nat none the table filters but does not masquerade; status says so', () => {
    const table = t.conc.execOk('nft', ['list', 'table', 'inet', 'sightline']);
    expect(table).not.toContain('masquerade');
    expect(table).toMatch(new RegExp(`iifname "${TUN}" counter packets \\d+ bytes \\d+ drop`));
    expect(t.sightline(['status']).stdout).toMatch(/^egress routed through TUN sightline0 .*NAT none/m);
  });

  test.each([
    ['root without CAP_NET_ADMIN', ['capsh', '--drop=cap_net_admin', '--', '-c', 'exec "$0" "$@"'], /routed mode needs root or CAP_NET_ADMIN/],
    ['a host without /dev/net/tun', ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" "$@"'], /no TUN support or \/dev\/net\/tun is not in this container/],
  ])('routed mode on %s fails at start with exit 1 and says what to do', (_what, wrap, message) => {
    const dir = join(t.dataDir, `refused-${wrap[0]}`);
    const config = join(t.dataDir, `refused-${wrap[0]}.yaml`);
    writeFileSync(config, `listenPort: 51899\ntunnel:\n  ipv4Pool: 10.78.0.0/24\n  ipv6Pool: fd78::/64\negress:\n  mode: routed\n  tun:\n    name: slrefused0\n`);
    const r = t.conc.exec(wrap[0], [...wrap.slice(1), 'node', BIN, '--data-dir', dir, '--config', config, 'start'], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/egress\.mode: socket/);
    expect(t.conc.execOk('ip', ['-o', 'link'])).not.toContain('slrefused0');
  });

  test('SIGTERM leaves no interface, route or nftables table behind', async () => {
    await t.stopConcentrator('SIGTERM');
    expectHostClean(t);
  });
});

/** curl with company CA only: success means the concentrator minted the leaf; the origin saw the concentrator. */
async function expectInspected(t: Topology, lab: RoutedLab): Promise<void> {
  const ok = curl(lab.alice, SITE, { cacert: lab.companyCa, path: '/routed' });
  expect(ok.code).toBe(0);
  expect(curl(lab.alice, SITE, { cacert: lab.origins.rootFile, path: '/direct' }).code).toBe(CURL_PEER_FAILED_VERIFICATION);
  await waitForRecord(t.dataDir, 'alice', 'flow_end of the inspected flow', (r) => r.type === 'flow_end' && r.mode === 'inspect' && r.sni === SITE.host);
  await waitForRecord(t.dataDir, 'alice', 'http record of the inspected request', (r) => r.type === 'http' && r.path === '/routed');
  const seen = (await lab.origin.requests()).find((q) => q.path === '/routed');
  expect(String(seen?.from).replace(/^::ffff:/, '')).toBe(CONC_ORIGIN_V4);
  await t.statusWhere('the inspected flow counted as terminated', (s) => (s.counters.routed?.terminated ?? 0) > 0);
}

/** The first status.json written after `since` (ms since the epoch). */
function statusAfter(t: Topology, since: number): ReturnType<Topology['statusWhere']> {
  return t.statusWhere('a status written after the traffic', (s) => Date.parse(s.writtenAt) > since + 100);
}

async function restart(t: Topology, c: Client): Promise<void> {
  await t.startConcentrator();
  t.reconnect(c);
  await waitFor('the client back after the restart', () => (ping(c, SERVER_V4) ? true : undefined), 30_000, 500);
}

function expectHostClean(t: Topology): void {
  expect(t.conc.execOk('ip', ['-o', 'link'])).not.toContain(TUN);
  expect(t.conc.execOk('ip', ['route'])).not.toContain(POOL_V4.split('/')[0]);
  expect(t.conc.execOk('ip', ['-6', 'route'])).not.toContain(POOL_V6.split('/')[0]);
  expect(t.conc.execOk('nft', ['list', 'tables'])).not.toContain('sightline');
  // A fresh namespace starts with forwarding off: the concentrator turned it on and back off.
  expect(forwarding(t.conc)).toEqual(['0', '0']);
  expect(existsSync(join(t.dataDir, 'routed-state.json'))).toBe(false);
}

function forwarding(ns: Namespace): string[] {
  return ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'].map((k) => ns.execOk('sysctl', ['-n', k]).trim());
}

function curlText(c: Client, url: string): string {
  return c.ns.exec('curl', ['-sS', '--max-time', '10', url], { timeoutMs: 20_000 }).stdout;
}

/** HTTP and UDP on every origin address that answer with the peer's address, and print each HTTP request. */
function whoServices(): string {
  return `
    const http = require('http'), dgram = require('dgram');
    const peer = (a) => a.replace(/^::ffff:/, '');
    http.createServer((q, r) => {
      console.log('HTTP ' + peer(q.socket.localAddress) + ' ' + peer(q.socket.remoteAddress) + ' ' + q.url);
      r.end('you are ' + peer(q.socket.remoteAddress));
    }).listen(${WHO_PORT}, '::');
    for (const [type, addr] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
      const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
      s.on('message', (m, r) => s.send('seen ' + r.address + ' ' + m, r.port, r.address));
      s.bind(${UDP_WHO_PORT}, addr);
    }
    setTimeout(() => console.log('READY'), 200);`;
}

/** TCP and UDP services of the concentrator's host that print a line for anything that reaches them. */
function hostServices(): string {
  const binds = [['127.0.0.1', LOOPBACK_PORT], [CONC_ORIGIN_V4, HOST_PORT], [CONC_ORIGIN_V6, HOST_PORT]];
  return `
    const net = require('net'), dgram = require('dgram');
    for (const [host, port] of ${JSON.stringify(binds)}) {
      net.createServer((s) => { console.log('HIT tcp ' + host); s.end('secret'); }).listen(port, host);
      const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      u.on('message', () => console.log('HIT udp ' + host));
      u.bind(port, host);
    }
    setTimeout(() => console.log('READY'), 200);`;
}

/** A TCP connect from the origin, bounded to a few seconds: prints "connected" or "refused-or-timeout". */
function connectScript(host: string, port: number): string {
  return `
    const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port} });
    const done = (w) => { console.log(w); process.exit(0); };
    s.on('connect', () => done('connected'));
    s.on('error', () => done('refused-or-timeout'));
    setTimeout(() => done('refused-or-timeout'), 4000);`;
}
