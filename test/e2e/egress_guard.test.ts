// Issue 8: the tunnel never reaches the concentrator's host or its
// neighbours unless an admin says so, and no packet loops through the
// concentrator. Stock wireguard-go clients in namespaces; every test is named
// for the attack it stops and ends by showing the same user's ordinary
// traffic still works. Destinations a client's kernel keeps to itself
// (127.0.0.1, ::1, ::ffff:127.0.0.1) are sent as hand-built packets into the
// tunnel device (raw_ip.py), which also reads the ICMP type and code exactly.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { userRecords } from '../helpers/inspect_client';
import { probe, tcpSyn, udpProbe as udp } from '../helpers/raw_ip';
import { CONC_ORIGIN_V4, CONC_ORIGIN_V6, ORIGIN_V4, SERVER_V4, SERVER_V6, Topology, startUdpEcho, udpExchange, type Client } from '../helpers/topology';
import { sleep, waitFor } from '../../scripts/lab/netns';
import { makeIntermediate, makeLeaf, makeRoot } from '../helpers/pki';

jest.setTimeout(240_000);

const LOOPBACK_PORT = 8111;
const HOST_PORT = 8112;
const METADATA = '169.254.169.254';
const DENIED_ORIGIN = '10.202.0.3';
/** An HTTPS origin whose certificate omits its intermediate and names cloud metadata as caIssuers. */
const AIA_SITE = 'meta-aia.test';
const AIA_PATH = '/issuer.der';

/** ICMPv4 destination unreachable, administratively prohibited (RFC 1812 §5.2.7.1). */
const PROHIBITED_V4 = { src: SERVER_V4, type: 3, code: 13 };
/** ICMPv6 destination unreachable, communication administratively prohibited (RFC 4443 §3.1). */
const PROHIBITED_V6 = { src: SERVER_V6, type: 1, code: 1 };

interface DeniedRecord {
  type: string;
  proto: string;
  dst: string;
  dstPort: number | null;
  reason: string;
  via?: string;
  path?: string;
}

describeE2E('egress guard: what a tunnel user cannot reach', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'ping', 'python3'], () => {
  const t = new Topology();
  let alice: Client;
  let mallory: Client;
  /** What reached the concentrator namespace's own services (must stay empty). */
  let concServiceHits = '';
  /** Requests the origin's plain HTTP servers (metadata included) received. */
  let originRequests = '';
  let tlsConfig: string[] = [];
  let companyCa = '';

  beforeAll(async () => {
    tlsConfig = ['tls:', `  upstreamCaFile: ${writeAiaSite(t.dataDir)}`];
    t.setup(tlsConfig.join('\n'));
    startUdpEcho(t);
    // Origin HTTP on every origin address, including the fake cloud metadata service (which also serves an issuer).
    const http = t.origin.spawn('node', ['-e', originHttp(join(t.dataDir, 'aia-inter.der'))]);
    http.stdout?.on('data', (c: Buffer) => (originRequests += c.toString()));
    t.origin.spawn('node', ['-e', originHttps(join(t.dataDir, 'aia-leaf.pem'), join(t.dataDir, 'aia-leaf.key'))]);
    for (const a of [METADATA, DENIED_ORIGIN]) {
      t.origin.execOk('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
      t.conc.execOk('ip', ['route', 'add', `${a}/32`, 'via', ORIGIN_V4]);
    }
    // Services of the concentrator's own host: on loopback, and on its host addresses.
    const services = t.conc.spawn('node', ['-e', concServices()]);
    services.stdout?.on('data', (c: Buffer) => (concServiceHits += c.toString()));
    await waitFor('concentrator-host services', () => (concServiceHits.includes('READY') ? true : undefined));
    concServiceHits = '';
    await t.startConcentrator();
    companyCa = join(t.dataDir, 'company-ca.pem');
    writeFileSync(companyCa, t.sightline(['ca', 'export']).stdout);
    alice = await t.client('alice');
    mallory = await t.client('mallory');
    routeLoopbackIntoTunnel(mallory);
    await waitFor('ordinary traffic through both tunnels', () => (ordinaryTrafficWorks(alice) && ordinaryTrafficWorks(mallory) ? true : undefined), 30_000, 500);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  /** Output of a process in a namespace so far; spawnSync'd clients keep the event loop from reading its pipe, so it gets a moment first. */
  async function settled(read: () => string): Promise<string> {
    await sleep(300);
    return read();
  }

  function deniedRecords(user: string): DeniedRecord[] {
    return userRecords(t.dataDir, user).filter((r) => r.type === 'egress_denied') as unknown as DeniedRecord[];
  }

  /** Waits for the user's log to hold an egress_denied record matching `want`. */
  async function expectDenied(user: string, want: Partial<DeniedRecord>): Promise<void> {
    await waitFor(`egress_denied ${JSON.stringify(want)} in ${user}'s log`, () => (deniedRecords(user).some((r) => matches(r, want)) ? true : undefined), 10_000, 100);
  }

  test('TCP and UDP to 127.0.0.1 never reach a service on the concentrator host loopback', async () => {
    const curl = mallory.ns.exec('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${LOOPBACK_PORT}/`]);
    expect(curl.code).not.toBe(0);
    expect(curl.stderr).toMatch(/No route to host|Couldn't connect/);
    const errors = probe(mallory, [tcpSyn(mallory.ipv4, '127.0.0.1', LOOPBACK_PORT), udp(mallory.ipv4, '127.0.0.1', LOOPBACK_PORT)]);
    expect(errors).toEqual([
      { ...PROHIBITED_V4, aboutDst: '127.0.0.1', aboutProtocol: 6 },
      { ...PROHIBITED_V4, aboutDst: '127.0.0.1', aboutProtocol: 17 },
    ]);
    await expectDenied('mallory', { proto: 'tcp', dst: '127.0.0.1', dstPort: LOOPBACK_PORT, reason: 'loopback' });
    await expectDenied('mallory', { proto: 'udp', dst: '127.0.0.1', dstPort: LOOPBACK_PORT, reason: 'loopback' });
    expect(await settled(() => concServiceHits)).toBe('');
    expect(ordinaryTrafficWorks(mallory)).toBe(true);
  });

  test('TCP and UDP to ::1 never reach a service on the concentrator host loopback', async () => {
    const errors = probe(alice, [tcpSyn(alice.ipv6, '::1', LOOPBACK_PORT), udp(alice.ipv6, '::1', LOOPBACK_PORT)]);
    expect(errors).toEqual([
      { ...PROHIBITED_V6, aboutDst: '::1', aboutProtocol: 6 },
      { ...PROHIBITED_V6, aboutDst: '::1', aboutProtocol: 17 },
    ]);
    await expectDenied('alice', { proto: 'udp', dst: '::1', reason: 'loopback' });
    expect(await settled(() => concServiceHits)).toBe('');
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test('the IPv4-mapped (::ffff:127.0.0.1) and NAT64 (64:ff9b::7f00:1) forms of loopback are refused the same way', async () => {
    const errors = probe(alice, [udp(alice.ipv6, '::ffff:127.0.0.1', LOOPBACK_PORT), tcpSyn(alice.ipv6, '64:ff9b::7f00:1', LOOPBACK_PORT)]);
    expect(errors).toEqual([
      { ...PROHIBITED_V6, aboutDst: '::ffff:127.0.0.1', aboutProtocol: 17 },
      { ...PROHIBITED_V6, aboutDst: '64:ff9b::7f00:1', aboutProtocol: 6 },
    ]);
    await expectDenied('alice', { dst: '::ffff:127.0.0.1', reason: 'loopback', via: 'ipv4_mapped' });
    await expectDenied('alice', { dst: '64:ff9b::7f00:1', reason: 'loopback', via: 'nat64' });
    expect(await settled(() => concServiceHits)).toBe('');
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test("a service bound to the concentrator host's own addresses is unreachable through the tunnel", async () => {
    const curl = alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${CONC_ORIGIN_V4}:${HOST_PORT}/`]);
    expect(curl.code).not.toBe(0);
    const errors = probe(alice, [udp(alice.ipv4, CONC_ORIGIN_V4, HOST_PORT), tcpSyn(alice.ipv6, CONC_ORIGIN_V6, HOST_PORT)]);
    expect(errors).toEqual([
      { ...PROHIBITED_V4, aboutDst: CONC_ORIGIN_V4, aboutProtocol: 17 },
      { ...PROHIBITED_V6, aboutDst: CONC_ORIGIN_V6, aboutProtocol: 6 },
    ]);
    await expectDenied('alice', { proto: 'tcp', dst: CONC_ORIGIN_V4, dstPort: HOST_PORT, reason: 'host_address' });
    await expectDenied('alice', { proto: 'tcp', dst: CONC_ORIGIN_V6, reason: 'host_address' });
    expect(await settled(() => concServiceHits)).toBe('');
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test('cloud metadata at 169.254.169.254 is refused by default', async () => {
    const curl = alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${METADATA}/latest/meta-data/`]);
    expect(curl.code).not.toBe(0);
    expect(curl.stderr).toMatch(/No route to host|Couldn't connect/);
    expect(probe(alice, [tcpSyn(alice.ipv4, METADATA, 80)])).toEqual([{ ...PROHIBITED_V4, aboutDst: METADATA, aboutProtocol: 6 }]);
    await expectDenied('alice', { proto: 'tcp', dst: METADATA, dstPort: 80, reason: 'link_local' });
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test("a certificate's AIA URL cannot make the concentrator fetch from cloud metadata", async () => {
    const curl = alice.ns.exec('curl', ['-sS', '--max-time', '10', '--cacert', companyCa, '--resolve', `${AIA_SITE}:443:${ORIGIN_V4}`, `https://${AIA_SITE}/`]);
    expect(curl.code).not.toBe(0);
    await expectDenied('alice', { proto: 'tcp', dst: METADATA, dstPort: 80, reason: 'link_local', path: 'fetch' });
    await waitFor('tls_upstream_rejected incomplete_chain', () => (userRecords(t.dataDir, 'alice').some((r) => r.type === 'tls_upstream_rejected' && r.reason === 'incomplete_chain') ? true : undefined));
    expect(await settled(() => originRequests)).not.toContain(AIA_PATH);
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test('multicast and broadcast (limited and the host subnet’s directed broadcast) are refused', async () => {
    const errors = probe(alice, [
      udp(alice.ipv4, '224.0.0.251', 5353),
      udp(alice.ipv6, 'ff02::fb', 5353),
      udp(alice.ipv4, '255.255.255.255', 67),
      udp(alice.ipv4, '10.202.0.255', 9),
    ]);
    expect(errors).toEqual([
      { ...PROHIBITED_V4, aboutDst: '224.0.0.251', aboutProtocol: 17 },
      { ...PROHIBITED_V6, aboutDst: 'ff02::fb', aboutProtocol: 17 },
      { ...PROHIBITED_V4, aboutDst: '255.255.255.255', aboutProtocol: 17 },
      { ...PROHIBITED_V4, aboutDst: '10.202.0.255', aboutProtocol: 17 },
    ]);
    await expectDenied('alice', { dst: '224.0.0.251', reason: 'multicast' });
    await expectDenied('alice', { dst: 'ff02::fb', reason: 'multicast' });
    await expectDenied('alice', { dst: '255.255.255.255', reason: 'broadcast' });
    await expectDenied('alice', { dst: '10.202.0.255', reason: 'broadcast' });
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test('a second WireGuard interface whose endpoint is reached through the first tunnel makes no loop', async () => {
    // Its own key, as a second peer; its endpoint is the concentrator itself, reached through mallory's tunnel.
    const inner = t.addPeer('mallory-inner', `${CONC_ORIGIN_V4}:51820`);
    await t.statusWhere('mallory-inner loaded', (s) => s.peers.some((p) => p.name === 'mallory-inner'));
    const ifname = await t.lab.wireguardGo(mallory.ns, 'wgi');
    const file = join(t.dataDir, 'mallory-inner.conf');
    writeFileSync(file, inner, { mode: 0o600 });
    mallory.ns.execOk('sh', ['-c', `wg-quick strip ${file} > ${file}.stripped && wg setconf ${ifname} ${file}.stripped`]);
    mallory.ns.execOk('ip', ['link', 'set', ifname, 'up']);
    mallory.ns.execOk('ip', ['route', 'add', '10.250.0.0/24', 'dev', ifname]);
    const serverKey = t.status().publicKey;
    for (const endpoint of [`${CONC_ORIGIN_V4}:51820`, '127.0.0.1:51820']) {
      mallory.ns.execOk('wg', ['set', ifname, 'peer', serverKey, 'endpoint', endpoint]);
      const pid = t.concProcess?.pid ?? 0;
      const before = cpuSeconds(pid);
      const started = Date.now();
      // Traffic for the inner tunnel makes wireguard-go initiate handshakes to that endpoint.
      mallory.ns.exec('ping', ['-c', '25', '-i', '0.2', '-W', '1', '-I', ifname, '10.250.0.1'], { timeoutMs: 30_000 });
      const wall = (Date.now() - started) / 1000;
      const used = cpuSeconds(pid) - before;
      // A loop would keep a core busy; an idle concentrator uses a few percent. Generous: the machine is shared.
      expect(used).toBeLessThan(wall * 0.5);
      await expectDenied('mallory', { proto: 'udp', dst: endpoint.split(':')[0], dstPort: 51820, reason: 'wireguard_listener' });
      expect(ordinaryTrafficWorks(mallory)).toBe(true);
    }
    const s = t.status();
    expect(s.peers.find((p) => p.name === 'mallory-inner')?.session).toBe(false);
    expect(s.counters.stack.egress_denied_wireguard_listener).toBeGreaterThan(0);
  });

  test('egress.deny refuses a private destination that is reachable by default', async () => {
    expect(curlBody(alice, `http://${DENIED_ORIGIN}/`)).toBe(`origin ${DENIED_ORIGIN} /`);
    await restartWith(['egress:', `  deny: ["${DENIED_ORIGIN}/32"]`, `  allow: ["${METADATA}/32"]`]);
    expect(alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${DENIED_ORIGIN}/`]).code).not.toBe(0);
    expect(probe(alice, [tcpSyn(alice.ipv4, DENIED_ORIGIN, 80)])).toEqual([{ ...PROHIBITED_V4, aboutDst: DENIED_ORIGIN, aboutProtocol: 6 }]);
    await expectDenied('alice', { proto: 'tcp', dst: DENIED_ORIGIN, dstPort: 80, reason: 'denied' });
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  test('egress.allow lets an admin open cloud metadata to tunnel users and to certificate fetches', async () => {
    expect(curlBody(alice, `http://${METADATA}/latest/meta-data/`)).toBe(`origin ${METADATA} /latest/meta-data/`);
    const site = alice.ns.exec('curl', ['-sS', '--max-time', '10', '--cacert', companyCa, '--resolve', `${AIA_SITE}:443:${ORIGIN_V4}`, `https://${AIA_SITE}/`]);
    expect(site.stdout).toBe(`hello from ${AIA_SITE}`);
    expect(await settled(() => originRequests)).toContain(`${METADATA} ${AIA_PATH}`);
    // The rest of the built-in refusals still hold.
    expect(probe(alice, [udp(alice.ipv4, '127.0.0.1', LOOPBACK_PORT)])).toEqual([{ ...PROHIBITED_V4, aboutDst: '127.0.0.1', aboutProtocol: 17 }]);
    expect(ordinaryTrafficWorks(alice)).toBe(true);
  });

  async function restartWith(extraConfig: string[]): Promise<void> {
    await t.stopConcentrator();
    t.writeConfig([...tlsConfig, ...extraConfig].join('\n'));
    await t.startConcentrator();
    for (const c of [alice, mallory]) t.reconnect(c);
    await waitFor('clients back after the restart', () => (ordinaryTrafficWorks(alice) ? true : undefined), 30_000, 500);
  }
});

/** The same user's everyday traffic: UDP to an origin and back, and an HTTP GET. */
function ordinaryTrafficWorks(c: Client): boolean {
  const echo = udpExchange(c.ns, ORIGIN_V4, 7, [`still-${c.name}`], 2000);
  return echo[0] === `echo:still-${c.name}` && curlBody(c, `http://${ORIGIN_V4}/ok`) === `origin ${ORIGIN_V4} /ok`;
}

function curlBody(c: Client, url: string): string {
  return c.ns.exec('curl', ['-sS', '--max-time', '5', url]).stdout;
}

function matches(r: DeniedRecord, want: Partial<DeniedRecord>): boolean {
  return Object.entries(want).every(([k, v]) => r[k as keyof DeniedRecord] === v);
}

/**
 * A hostile client's kernel can route 127.0.0.0/8 into its tunnel: without
 * the local routes and with route_localnet, ordinary tools (curl, a second
 * wireguard-go) send to 127.0.0.1 through the tunnel.
 */
function routeLoopbackIntoTunnel(c: Client): void {
  c.ns.execOk('sysctl', ['-qw', 'net.ipv4.conf.all.route_localnet=1', `net.ipv4.conf.${c.ifname}.route_localnet=1`]);
  c.ns.execOk('ip', ['route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local']);
  c.ns.execOk('ip', ['route', 'del', 'local', '127.0.0.1', 'dev', 'lo', 'table', 'local']);
}

/**
 * The test PKI for AIA_SITE: a root the concentrator trusts (returned), a leaf
 * served without its intermediate, and the intermediate at the caIssuers URL.
 */
function writeAiaSite(dir: string): string {
  const root = makeRoot({ cn: 'Egress Test Root' });
  const inter = makeIntermediate(root, { cn: 'Egress Test Intermediate' });
  const leaf = makeLeaf(inter, { dns: [AIA_SITE], caIssuersUrl: `http://${METADATA}${AIA_PATH}` });
  writeFileSync(join(dir, 'aia-root.pem'), root.pem);
  writeFileSync(join(dir, 'aia-inter.der'), inter.der);
  writeFileSync(join(dir, 'aia-leaf.pem'), leaf.pem);
  writeFileSync(join(dir, 'aia-leaf.key'), leaf.keyPem, { mode: 0o600 });
  return join(dir, 'aia-root.pem');
}

/** Plain HTTP on every origin address: the issuer at AIA_PATH, a text naming address and path otherwise; prints each request. */
function originHttp(issuerFile: string): string {
  return `
    const issuer = require('fs').readFileSync(${JSON.stringify(issuerFile)});
    require('http').createServer((q, r) => {
      console.log(q.socket.localAddress + ' ' + q.url);
      if (q.url === ${JSON.stringify(AIA_PATH)}) r.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(issuer);
      else r.end('origin ' + q.socket.localAddress + ' ' + q.url);
    }).listen(80, '0.0.0.0');`;
}

function originHttps(certFile: string, keyFile: string): string {
  return `
    const fs = require('fs');
    require('https').createServer({ cert: fs.readFileSync(${JSON.stringify(certFile)}), key: fs.readFileSync(${JSON.stringify(keyFile)}) },
      (q, r) => r.end('hello from ${AIA_SITE}')).listen(443, ${JSON.stringify(ORIGIN_V4)});`;
}

/** TCP and UDP services of the concentrator's host that print a line for anything that reaches them. */
function concServices(): string {
  const binds = [['127.0.0.1', LOOPBACK_PORT], ['::1', LOOPBACK_PORT], [CONC_ORIGIN_V4, HOST_PORT], [CONC_ORIGIN_V6, HOST_PORT]];
  return `
    const net = require('net'), dgram = require('dgram');
    for (const [host, port] of ${JSON.stringify(binds)}) {
      net.createServer((s) => { console.log('HIT tcp ' + host); s.end('secret'); }).listen(port, host);
      const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      u.on('message', (m, r) => { console.log('HIT udp ' + host); u.send('secret', r.port, r.address); });
      u.bind(port, host);
    }
    setTimeout(() => console.log('READY'), 200);`;
}

/** User + system CPU time of a process so far (/proc/PID/stat, in clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14 and stime 15 (proc(5)), so indexes 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

