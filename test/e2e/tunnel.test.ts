// Issue: a real WireGuard client (the official wireguard-go) gets a working
// tunnel to the concentrator. Every host is a namespace made here.
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, ORIGIN_V6, ROOT, SERVER_V4, SERVER_V6, Topology, ping, startUdpEcho, udpExchange, type Client } from '../helpers/topology';
import { join } from 'node:path';
import { sleep, waitFor } from '../../scripts/lab/netns';

const RELAY = join(ROOT, 'dist', 'scripts', 'lab', 'udp_relay.js');
const FLOOD = join(ROOT, 'dist', 'scripts', 'lab', 'udp_flood.js');
const INITIATOR = join(ROOT, 'dist', 'scripts', 'lab', 'wg_initiator.js');

jest.setTimeout(180_000);

function pingCount(c: Client, target: string, count: number, extra: string[] = []): number {
  const r = c.ns.exec('ping', ['-c', String(count), '-i', '0.01', '-W', '1', ...extra, target], { timeoutMs: 60_000 });
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

describeE2E('tunnel with wireguard-go clients', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping', 'dig', 'dnsmasq'], () => {
  const t = new Topology();
  let alice: Client;
  let bob: Client;
  let carol: Client;

  beforeAll(async () => {
    t.setup();
    startUdpEcho(t);
    // A real DNS server at the origin; edns-packet-max 512 makes it truncate
    // larger answers over UDP so the forwarder's TCP retry is exercised.
    const bigTxt = Array.from({ length: 4 }, (_, i) => `--txt-record=big.corp.test,${String(i).repeat(200)}`);
    t.origin.spawn('dnsmasq', ['-k', '--no-resolv', '--no-hosts', '--port=53', '--listen-address=' + ORIGIN_V4, '--bind-interfaces', '--address=/intranet.corp.test/10.9.8.7', '--address=/intranet.corp.test/fd09::87', '--edns-packet-max=512', ...bigTxt]);
    await t.startConcentrator();
    [alice, bob, carol] = [await t.client('alice'), await t.client('bob'), await t.client('carol')];
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('the handshake completes and the client pings the concentrator over IPv4', async () => {
    expect(ping(alice, SERVER_V4)).toBe(true);
    const s = await t.statusWhere('alice session', (st) => st.peers.some((p) => p.name === 'alice' && p.session));
    expect(s.peers.find((p) => p.name === 'alice')?.endpoint).toBe(`${alice.underlay}:${alice.ns.execOk('wg', ['show', alice.ifname, 'listen-port']).trim()}`);
  });

  test('the client pings the concentrator over IPv6', () => {
    expect(ping(alice, SERVER_V6)).toBe(true);
  });

  test('UDP round trips reach an origin host through the tunnel, IPv4 and IPv6', () => {
    expect(udpExchange(alice.ns, ORIGIN_V4, 7, ['one', 'two'])).toEqual(['echo:one', 'echo:two']);
    expect(udpExchange(alice.ns, ORIGIN_V6, 7, ['six'])).toEqual(['echo:six']);
  });

  test('DNS lookups to the concentrator are answered by the upstream resolver', () => {
    expect(alice.ns.execOk('dig', ['+short', '+time=2', '+tries=2', `@${SERVER_V4}`, 'intranet.corp.test', 'A']).trim()).toBe('10.9.8.7');
    expect(alice.ns.execOk('dig', ['+short', '+time=2', '+tries=2', `@${SERVER_V6}`, 'intranet.corp.test', 'AAAA']).trim()).toBe('fd09::87');
  });

  test('a DNS answer truncated upstream is fetched over TCP and delivered whole', async () => {
    const out = alice.ns.execOk('dig', ['+time=2', '+tries=1', '+ignore', '+bufsize=1232', `@${SERVER_V4}`, 'big.corp.test', 'TXT']);
    expect(out).not.toMatch(/flags:[^;]*\btc\b/);
    expect((out.match(/\bTXT\b/g) ?? []).length).toBeGreaterThanOrEqual(4);
    const s = await t.statusWhere('dns tcp retry counted', (st) => (st.counters.dns?.tcpRetries ?? 0) > 0);
    expect(s.counters.dns.tcpRetries).toBeGreaterThan(0);
  });

  test('three clients at once each get only their own traffic', () => {
    const results = [alice, bob, carol].map((c) => udpExchange(c.ns, ORIGIN_V4, 7, [`from-${c.name}-1`, `from-${c.name}-2`]));
    expect(results).toEqual([alice, bob, carol].map((c) => [`echo:from-${c.name}-1`, `echo:from-${c.name}-2`]));
    for (const c of [alice, bob, carol]) expect(ping(c, SERVER_V4)).toBe(true);
  });

  test('peers cannot reach each other through the concentrator', async () => {
    expect(ping(bob, alice.ipv4)).toBe(false);
    const s = await t.statusWhere('peer_to_peer counted', (st) => (st.counters.stack?.egress_denied_peer_to_peer ?? 0) > 0);
    expect(s.counters.stack.egress_denied_peer_to_peer).toBeGreaterThan(0);
  });

  test('a client with an unknown key gets nothing', async () => {
    const key = t.lab.namespace('tmp').execOk('wg', ['genkey']).trim();
    const conf = alice.config.replace(/^PrivateKey = .*$/m, `PrivateKey = ${key}`).replace(/^Address = .*$/m, 'Address = 10.77.0.200/32, fd77:1:2::200/128');
    const stranger = await t.client('stranger', conf.replace(/Endpoint = .*/, 'Endpoint = 10.201.5.1:51820'));
    expect(ping(stranger, SERVER_V4)).toBe(false);
    const handshakes = stranger.ns.execOk('wg', ['show', stranger.ifname, 'latest-handshakes']);
    expect(handshakes.trim().split(/\s+/)[1]).toBe('0');
  });

  test("a client spoofing another peer's source address gets nothing and is counted", async () => {
    const before = t.status().counters.tunnel?.spoofed_source ?? 0;
    carol.ns.execOk('ip', ['addr', 'add', `${bob.ipv4}/32`, 'dev', carol.ifname]);
    expect(ping(carol, SERVER_V4, ['-I', bob.ipv4])).toBe(false);
    const s = await t.statusWhere('spoofed_source counted', (st) => (st.counters.tunnel?.spoofed_source ?? 0) > before);
    expect(s.counters.tunnel.spoofed_source).toBeGreaterThan(before);
    carol.ns.execOk('ip', ['addr', 'del', `${bob.ipv4}/32`, 'dev', carol.ifname]);
    expect(ping(carol, SERVER_V4)).toBe(true);
  });

  test("the tunnel survives the client's address and port changing (NAT rebinding)", async () => {
    expect(ping(bob, SERVER_V4)).toBe(true);
    // New source port.
    bob.ns.execOk('wg', ['set', bob.ifname, 'listen-port', '40001']);
    expect(ping(bob, SERVER_V4)).toBe(true);
    await t.statusWhere('roamed port', (st) => st.peers.find((p) => p.name === 'bob')?.endpoint === `${bob.underlay}:40001`);
    // Behind a NAT that rebinds to another public address and port: a relay
    // in the device's namespace plays the NAT, sending from a second address.
    const veth = bob.ns.execOk('ip', ['-o', '-4', 'addr', 'show', 'to', bob.underlay]).split(/\s+/)[1];
    const natAddress = bob.underlay.replace(/\.2$/, '.3');
    bob.ns.execOk('ip', ['addr', 'add', `${natAddress}/24`, 'dev', veth]);
    const concSide = bob.underlay.replace(/\.2$/, '.1');
    bob.ns.spawn('node', [RELAY, '127.0.0.1', '45001', concSide, '51820', JSON.stringify({ bindAddress: natAddress })]);
    await sleep(300);
    bob.ns.execOk('wg', ['set', bob.ifname, 'peer', t.status().publicKey, 'endpoint', '127.0.0.1:45001']);
    expect(ping(bob, SERVER_V4)).toBe(true);
    const s = await t.statusWhere('roamed address', (st) => st.peers.find((p) => p.name === 'bob')?.endpoint?.startsWith(`${natAddress}:`) === true);
    expect(s.peers.find((p) => p.name === 'bob')?.session).toBe(true);
    expect(udpExchange(bob.ns, ORIGIN_V4, 7, ['after-rebinding'])).toEqual(['echo:after-rebinding']);
  });

  test('a peer added while running is picked up within a second, without a restart', async () => {
    const started = Date.now();
    const dave = await t.client('dave');
    await waitFor('dave reachable', () => (ping(dave, SERVER_V4) ? true : undefined), 10_000, 100);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(t.concProcess?.exitCode).toBeNull();
  });
});

describeE2E('tunnel under hostile input', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping'], () => {
  const t = new Topology();
  let alice: Client;

  beforeAll(async () => {
    t.setup();
    await t.startConcentrator();
    alice = await t.client('alice');
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('100,000 random, truncated, oversized and replayed datagrams: no crash, the session survives, drops are counted', async () => {
    expect(ping(alice, SERVER_V4)).toBe(true);
    // Route alice through a relay that replays every datagram 30 ms later.
    const relayPort = 45000;
    alice.ns.spawn('node', [RELAY, '127.0.0.1', String(relayPort), '10.201.1.1', '51820', JSON.stringify({ replayAfterMs: 30 })]);
    await sleep(300);
    alice.ns.execOk('wg', ['set', alice.ifname, 'peer', t.status().publicKey, 'endpoint', `127.0.0.1:${relayPort}`]);
    const pinger = alice.ns.spawn('ping', ['-c', '300', '-i', '0.05', '-W', '1', SERVER_V4]);
    let pingOut = '';
    pinger.stdout?.on('data', (c: Buffer) => (pingOut += c.toString()));
    const flooder = alice.ns.spawn('node', [FLOOD, '10.201.1.1', '51820', '100000', '7']);
    const floodCode = await new Promise<number | null>((r) => flooder.on('exit', (code) => r(code)));
    expect(floodCode).toBe(0);
    await new Promise<void>((r) => (pinger.exitCode !== null ? r() : pinger.on('exit', () => r())));
    const received = Number(/(\d+) received/.exec(pingOut)?.[1] ?? 0);
    expect(received).toBeGreaterThanOrEqual(270);
    expect(t.concProcess?.exitCode).toBeNull();
    expect(ping(alice, SERVER_V4)).toBe(true);
    const wg = t.status().counters.wireguard;
    expect(wg.replay).toBeGreaterThan(0);
    const dropReasons = Object.entries(wg).filter(([k, v]) => k !== 'replay' && v > 0).map(([k]) => k);
    expect(dropReasons.length).toBeGreaterThanOrEqual(3);
    expect(pingCount(alice, SERVER_V4, 20)).toBe(20);
  });
});

describeE2E('concentrator as the handshake initiator', ['ip', 'wireguard-go', 'wg'], () => {
  const t = new Topology();

  afterAll(async () => {
    await t.cleanup();
  });

  test('with data for a peer and no session, our stack initiates and wireguard-go responds', async () => {
    t.setup();
    const device = t.lab.namespace('resp');
    t.lab.link(t.conc, ['10.203.0.1/24'], device, ['10.203.0.2/24']);
    const ifname = await t.lab.wireguardGo(device, 'wgr');
    const devKey = device.execOk('wg', ['genkey']).trim();
    const keyFile = `${t.dataDir}/responder.key`;
    device.execOk('sh', ['-c', `umask 077; echo ${devKey} > ${keyFile}`]);
    device.execOk('wg', ['set', ifname, 'listen-port', '51821', 'private-key', keyFile]);
    device.execOk('ip', ['addr', 'add', '10.77.0.50/32', 'dev', ifname]);
    device.execOk('ip', ['link', 'set', ifname, 'up']);
    const devPub = device.execOk('wg', ['pubkey'], { input: devKey }).trim();

    const child = t.conc.spawn('node', [INITIATOR, devPub, '10.203.0.2:51821', '10.77.0.1', '10.77.0.50']);
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const ourPub = await waitFor('initiator key', () => (out.includes('\n') ? out.split('\n')[0] : undefined));
    // The responder knows our key and our tunnel address, but not our endpoint: it must learn it from our initiation.
    device.execOk('wg', ['set', ifname, 'peer', ourPub, 'allowed-ips', '10.77.0.1/32']);
    device.execOk('ip', ['route', 'add', '10.77.0.1/32', 'dev', ifname]);
    child.stdin?.write('go\n');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect({ code, out: out.split('\n')[1], err }).toEqual({ code: 0, out: 'reply', err: '' });
    expect(device.execOk('wg', ['show', ifname, 'endpoints'])).toMatch(/10\.203\.0\.1:\d+/);
  });
});
