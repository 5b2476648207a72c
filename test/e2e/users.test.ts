// Issue 10: users with several devices, through the tunnel with the official
// wireguard-go as the employee's client. Disabling a user cuts every device
// of theirs within a second, without a restart; an expired device is refused
// like a disabled one; a restart keeps every user, device, key and lease.
import type { ChildProcess } from 'node:child_process';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, SERVER_V4, Topology, ping, startUdpEcho, udpExchange, type Client, type StatusJson } from '../helpers/topology';
import { sleep, waitFor } from '../../scripts/lab/netns';

jest.setTimeout(240_000);

const HOLD_PORT = 9000;
/** The concentrator polls the store every 200 ms: this is the requirement, not a guess at speed. */
const CUT_WITHIN_MS = 1000;

/** One ping with a one-second wait: fails as soon as the tunnel is cut. */
function pingOnce(c: Client): boolean {
  return c.ns.exec('ping', ['-c', '1', '-W', '1', SERVER_V4], { timeoutMs: 10_000 }).code === 0;
}

function peer(s: StatusJson, name: string): StatusJson['peers'][number] {
  const p = s.peers.find((x) => x.name === name);
  if (!p) throw new Error(`no peer ${name} in status.json`);
  return p;
}

/** What `device list --json` says apart from the live fields. */
function storedDevices(t: Topology): unknown {
  const r = t.sightline(['device', 'list', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as Array<Record<string, unknown>>).map(({ user, device, ipv4, ipv6, publicKey, state, createdAt, expiresAt }) => ({
    user, device, ipv4, ipv6, publicKey, state, createdAt, expiresAt,
  }));
}

function output(child: ChildProcess): () => string {
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  return () => text;
}

describeE2E('users and devices with wireguard-go clients', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping'], () => {
  const t = new Topology();
  let laptop: Client;
  let phone: Client;
  let bob: Client;
  let originLog: () => string;

  beforeAll(async () => {
    t.setup();
    startUdpEcho(t);
    // An origin that holds TCP connections open and says when one closes.
    originLog = output(t.origin.spawn('node', ['-e', `require('net').createServer((s) => { console.log('open'); s.on('error', () => {}); s.resume(); s.on('close', () => console.log('closed')); }).listen(${HOLD_PORT}, '0.0.0.0')`]));
    await t.startConcentrator();
    laptop = await t.client('alice', (ep) => t.addDevice('alice', ep));
    phone = await t.client('alice/phone', (ep) => t.addDevice('alice', ep, ['--name', 'phone']));
    bob = await t.client('bob', (ep) => t.addDevice('bob', ep));
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('two devices of one user connect at once, each with its own addresses, and both work', async () => {
    expect([laptop.ipv4, laptop.ipv6]).not.toEqual([phone.ipv4, phone.ipv6]);
    expect(laptop.ipv4).not.toBe(phone.ipv4);
    expect(laptop.ipv6).not.toBe(phone.ipv6);
    expect(ping(laptop, SERVER_V4)).toBe(true);
    expect(ping(phone, SERVER_V4)).toBe(true);
    const s = await t.statusWhere('both sessions', (st) => peer(st, 'alice').session && peer(st, 'alice/phone').session);
    expect([peer(s, 'alice').device, peer(s, 'alice/phone').device]).toEqual(['default', 'phone']);
    expect(peer(s, 'alice').endpoint).not.toBe(peer(s, 'alice/phone').endpoint);
    expect(udpExchange(laptop.ns, ORIGIN_V4, 7, ['from-laptop'])).toEqual(['echo:from-laptop']);
    expect(udpExchange(phone.ns, ORIGIN_V4, 7, ['from-phone'])).toEqual(['echo:from-phone']);
  });

  test('device list shows the live fields of the running concentrator', () => {
    const r = t.sightline(['device', 'list', 'alice', '--json']);
    const rows = JSON.parse(r.stdout) as Array<{ device: string; ipv4: string; lastHandshake: string | null; endpoint: string | null; rxBytes: number | null }>;
    expect(rows.map((x) => [x.device, x.ipv4])).toEqual([['default', laptop.ipv4], ['phone', phone.ipv4]]);
    for (const x of rows) {
      expect(Date.now() - Date.parse(x.lastHandshake ?? '')).toBeLessThan(120_000);
      expect(x.endpoint).toMatch(/^10\.201\.\d+\.2:\d+$/);
      expect(x.rxBytes).toBeGreaterThan(0);
    }
  });

  test('user disable cuts both devices within a second, ends their flows, and leaves other users alone', async () => {
    // A TCP flow of the laptop's, held open at the origin.
    laptop.ns.spawn('node', ['-e', `const s = require('net').connect(${HOLD_PORT}, '${ORIGIN_V4}', () => s.write('x')); s.on('error', () => {}); setTimeout(() => {}, 120000)`]);
    await waitFor('the held flow to open', () => (originLog().includes('open') ? true : undefined), 15_000);

    const r = t.sightline(['user', 'disable', 'alice']);
    const returned = Date.now();
    expect(r.code).toBe(0);
    // Generous for a loaded machine: the concentrator's own timestamps below carry the 1 s requirement.
    const firstFailure = await waitFor('the first failed ping', () => (pingOnce(laptop) ? undefined : Date.now()), 15_000, 0);
    expect(firstFailure - returned).toBeLessThan(10_000);
    expect(pingOnce(phone)).toBe(false);

    const s = await t.statusWhere('both devices disabled', (st) => peer(st, 'alice').state === 'disabled' && peer(st, 'alice/phone').state === 'disabled');
    for (const name of ['alice', 'alice/phone']) {
      expect(Date.parse(peer(s, name).stateSince) - returned).toBeLessThan(CUT_WITHIN_MS);
      expect(peer(s, name).session).toBe(false);
    }
    expect(peer(s, 'bob').state).toBe('active');
    expect(ping(bob, SERVER_V4)).toBe(true);

    await waitFor('the origin to see the held flow closed', () => (originLog().includes('closed') ? true : undefined), 10_000);
    const cut = await t.outputLine('the cut logged', /"peer":"alice".*"msg":"tunnel cut"/);
    expect(cut).toMatch(/"reason":"disabled".*"tcpFlows":1/);
  });

  test("a disabled user's handshakes are refused and counted per device", async () => {
    const before = t.status().counters.wireguard?.handshake_refused_disabled ?? 0;
    t.reconnect(laptop);
    t.reconnect(phone);
    expect(ping(laptop, SERVER_V4)).toBe(false);
    expect(ping(phone, SERVER_V4)).toBe(false);
    const s = await t.statusWhere('refusals counted', (st) => peer(st, 'alice').refusedHandshakes > 0 && peer(st, 'alice/phone').refusedHandshakes > 0, 20_000);
    expect(s.counters.wireguard.handshake_refused_disabled).toBeGreaterThanOrEqual(before + 2);
    expect(s.counters.wireguard.unknown_peer ?? 0).toBe(0);
    expect(laptop.ns.execOk('wg', ['show', laptop.ifname, 'latest-handshakes']).trim().split(/\s+/)[1]).toBe('0');
  });

  test('user enable lets both devices in again with the configs they have', async () => {
    expect(t.sightline(['user', 'enable', 'alice']).code).toBe(0);
    await t.statusWhere('both devices active', (st) => peer(st, 'alice').state === 'active' && peer(st, 'alice/phone').state === 'active');
    for (const c of [laptop, phone]) {
      t.reconnect(c);
      await waitFor(`${c.name} back`, () => (ping(c, SERVER_V4) ? true : undefined), 30_000, 200);
    }
  });

  test('an expired device is refused; re-enabling its user does not revive it; renewing does', async () => {
    expect(ping(bob, SERVER_V4)).toBe(true);
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    expect(t.sightline(['device', 'renew', 'bob', 'default', '--expires', expiresAt]).code).toBe(0);
    // No store change happens at the expiry itself: the concentrator acts on its own.
    const s = await t.statusWhere('bob expired', (st) => peer(st, 'bob').state === 'expired', 15_000);
    expect(Date.parse(peer(s, 'bob').stateSince) - Date.parse(expiresAt)).toBeLessThan(CUT_WITHIN_MS);
    expect(pingOnce(bob)).toBe(false);
    t.reconnect(bob);
    expect(ping(bob, SERVER_V4)).toBe(false);
    await t.statusWhere('expired refusals counted', (st) => (st.counters.wireguard?.handshake_refused_expired ?? 0) > 0 && peer(st, 'bob').refusedHandshakes > 0, 20_000);

    expect(t.sightline(['user', 'disable', 'bob']).code).toBe(0);
    expect(t.sightline(['user', 'enable', 'bob']).code).toBe(0);
    await sleep(1000); // several store polls
    expect(peer(await t.statusWhere('a fresh status', (st) => Date.parse(st.writtenAt) > Date.now() - 500), 'bob').state).toBe('expired');
    expect(ping(bob, SERVER_V4)).toBe(false);

    expect(t.sightline(['device', 'renew', 'bob', 'default', '--expires', '1h']).code).toBe(0);
    await t.statusWhere('bob active', (st) => peer(st, 'bob').state === 'active');
    t.reconnect(bob);
    await waitFor('bob back', () => (ping(bob, SERVER_V4) ? true : undefined), 30_000, 200);
  });

  test('a restart keeps users, devices, keys and leases; the clients resume with the config they have', async () => {
    const devices = storedDevices(t);
    const publicKey = t.status().publicKey;
    await t.stopConcentrator();
    expect(ping(laptop, SERVER_V4)).toBe(false);
    await t.startConcentrator();
    expect(storedDevices(t)).toEqual(devices);
    expect(t.status().publicKey).toBe(publicKey);
    // Nothing is re-applied on the clients: wireguard-go notices the lost session and handshakes again by itself.
    for (const c of [laptop, phone, bob]) await waitFor(`${c.name} resumed`, () => (ping(c, SERVER_V4) ? true : undefined), 60_000, 500);
    const s = await t.statusWhere('three sessions', (st) => ['alice', 'alice/phone', 'bob'].every((n) => peer(st, n).session));
    expect(s.peers.map((p) => [p.name, p.state])).toEqual([['alice', 'active'], ['alice/phone', 'active'], ['bob', 'active']]);
  });

  test('user remove ends the tunnel within a second and the device becomes unknown', async () => {
    const r = t.sightline(['user', 'remove', 'bob']);
    const returned = Date.now();
    expect(r.code).toBe(0);
    const cut = await t.outputLine('the cut to be logged', /"peer":"bob".*"reason":"removed".*"msg":"tunnel cut"/, 5000);
    expect(Date.parse((JSON.parse(cut) as { time: string }).time) - returned).toBeLessThan(CUT_WITHIN_MS);
    expect(pingOnce(bob)).toBe(false);
    await t.statusWhere('bob gone', (st) => !st.peers.some((p) => p.name === 'bob'));
    t.reconnect(bob);
    expect(ping(bob, SERVER_V4)).toBe(false);
    await t.statusWhere('an unknown peer counted', (st) => (st.counters.wireguard?.unknown_peer ?? 0) > 0, 20_000);
    expect(ping(laptop, SERVER_V4)).toBe(true);
  });
});
