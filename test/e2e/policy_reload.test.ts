// Issue 9, end to end through the tunnel with wireguard-go clients: egress
// to internal networks is governed by policy (allow group finance to
// 10.20.0.0/16, block everyone else: a reset for TCP, administratively
// prohibited for UDP and ping); `sightline policy explain` says what the log
// recorded; a SIGHUP with a changed rule changes new flows' decisions
// without a new handshake and without touching a running flow; an invalid
// file keeps the running policy, and `sightline status` says why.
import type { ChildProcess } from 'node:child_process';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, SERVER_V4, Topology, udpExchange, type Client, type StatusJson } from '../helpers/topology';
import { userRecords, waitForRecord, type UserRecord } from '../helpers/inspect_client';
import { icmpErrors, rawExchange } from '../helpers/raw_ip';
import { sleep, waitFor } from '../../scripts/lab/netns';
import { buildIcmpEcho, buildUdpPacket, IpAddress } from '../../netstack/wire';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl'];
/** An internal server on the origin's link, in the company's 10.20.0.0/16. */
const INTERNAL = '10.20.0.5';
const CURL_COULDNT_CONNECT = 7;
/** A UDP echo bound to the internal address (its replies must come from it). */
const INTERNAL_ECHO_PORT = 17;

const policy = (first: string[] = []) => [
  'groups:',
  '  finance: [bob]',
  'policy:',
  '  rules:',
  ...first,
  '    - { id: finance-net, action: allow, dst: [10.20.0.0/16], groups: [finance] }',
  '    - { id: internal-closed, action: block, dst: [10.20.0.0/16] }',
  '    - { id: allow-rest, action: allow }',
].join('\n');

describeE2E('policy on internal networks, explained, and reloaded without a new handshake', TOOLS, () => {
  const t = new Topology();
  let alice: Client;
  let bob: Client;
  const records = (user: string, type: string): UserRecord[] => userRecords(t.dataDir, user).filter((r) => r.type === type);
  const get = (c: Client, path: string) => c.ns.exec('curl', ['-sS', '--max-time', '5', `http://${INTERNAL}:8080${path}`], { timeoutMs: 15_000 });
  const explain = (user: string, dst: string, protocol: string): { rule: string; action: string } =>
    JSON.parse(t.sightline(['policy', 'explain', '--user', user, '--dst', dst, '--protocol', protocol, '--json']).stdout) as { rule: string; action: string };
  const generation = (): number => t.status().policy?.generation ?? 0;
  /** The status once reloads under way have settled: a saved file is reloaded by the watcher too, 300 ms later. */
  const settled = async (): Promise<StatusJson> => {
    await sleep(1500);
    const since = Date.now();
    return t.statusWhere('a fresh status', (x) => Date.parse(x.writtenAt) >= since);
  };

  beforeAll(async () => {
    t.setup(policy());
    const veth = /^\d+:\s+([^@:]+)/m.exec(t.origin.execOk('ip', ['-o', 'link', 'show', 'type', 'veth']))?.[1] as string;
    t.origin.execOk('ip', ['addr', 'add', `${INTERNAL}/24`, 'dev', veth]);
    t.conc.execOk('ip', ['route', 'add', '10.20.0.0/16', 'via', ORIGIN_V4]);
    t.origin.spawn('node', ['-e', `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address)); s.bind(${INTERNAL_ECHO_PORT}, '${INTERNAL}');`]);
    const http = t.origin.spawn('node', ['-e', `require('http').createServer((q, s) => s.end('internal ' + q.url)).listen(8080, '${INTERNAL}', () => console.log('ready'))`]);
    let out = '';
    http.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('internal server', () => (out.includes('ready') ? true : undefined), 10_000);
    await t.startConcentrator();
    alice = await t.client('alice');
    bob = await t.client('bob');
  });

  afterAll(async () => {
    await t.cleanup();
  });

  describe('internal networks: allow group finance to 10.20.0.0/16, block everyone else', () => {
    test('a member of finance reaches the internal server over TCP and UDP', () => {
      const r = get(bob, '/report');
      expect(r.stdout).toBe('internal /report');
      expect(udpExchange(bob.ns, INTERNAL, INTERNAL_ECHO_PORT, ['hi'])).toEqual(['echo:hi']);
    });

    test('anyone else gets a reset for TCP, and administratively prohibited for UDP and ping, from the concentrator', async () => {
      expect(get(alice, '/report').code).toBe(CURL_COULDNT_CONNECT);
      const packets = [
        buildUdpPacket(IpAddress.parse(alice.ipv4), 45_000, IpAddress.parse(INTERNAL), INTERNAL_ECHO_PORT, Buffer.from('hi')),
        buildIcmpEcho(IpAddress.parse(alice.ipv4), IpAddress.parse(INTERNAL), 'echo_request', 9, 1, Buffer.from('ping')),
      ];
      const errors = icmpErrors(rawExchange(alice.ns, alice.ifname, packets, 2000));
      expect(errors.map((e) => [e.src, e.type, e.code, e.aboutProtocol])).toEqual([[SERVER_V4, 3, 13, 17], [SERVER_V4, 3, 13, 1]]);
      await waitForRecord(t.dataDir, 'alice', 'three policy records', () => records('alice', 'policy').length >= 3);
      expect(records('alice', 'policy').map((r) => [r.proto, r.rule, r.action, r.reason])).toEqual([
        ['tcp', 'internal-closed', 'block', 'policy-block'],
        ['udp', 'internal-closed', 'block', 'policy-block'],
        ['icmp', 'internal-closed', 'block', 'policy-block'],
      ]);
    });
  });

  test('policy explain gives the rule and action the log recorded, for the same user, destination and protocol', async () => {
    for (const r of records('alice', 'policy')) {
      const dst = r.proto === 'icmp' ? String(r.dst) : `${String(r.dst)}:${String(r.dstPort)}`;
      expect(explain('alice', dst, String(r.proto))).toMatchObject({ rule: r.rule, action: r.action });
    }
    const flow = await waitForRecord(t.dataDir, 'bob', 'bob\'s TCP flow record', (x) => x.type === 'flow' && x.dst === INTERNAL);
    expect(flow).toMatchObject({ rule: 'finance-net', action: 'allow' });
    expect(explain('bob', `${INTERNAL}:8080`, 'tcp')).toMatchObject({ rule: flow.rule, action: flow.action });
  });

  describe('hot reload', () => {
    let held: ChildProcess;
    let heldOut = '';

    test('a SIGHUP with a changed rule changes new flows\' decisions, without a new handshake, and a running flow goes on', async () => {
      // A keep-alive connection opened before the reload; its second request is sent after it.
      const script = `
        const s = require('net').connect(8080, '${INTERNAL}', () => s.write('GET /one HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
        s.on('data', (d) => process.stdout.write(d.toString().split('\\r\\n\\r\\n')[1] + '\\n'));
        process.stdin.once('data', () => s.write('GET /two HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));`;
      held = bob.ns.spawn('node', ['-e', script]);
      held.stdout?.on('data', (c: Buffer) => (heldOut += c.toString()));
      await waitFor('the held flow\'s first answer', () => (heldOut.includes('internal /one') ? true : undefined), 10_000);
      const handshakeBefore = bob.ns.execOk('wg', ['show', bob.ifname, 'latest-handshakes']);
      const before = generation();

      t.writeConfig(policy(['    - { id: maintenance, action: block, dst: [10.20.0.0/16] }']));
      t.concProcess?.kill('SIGHUP');
      await t.statusWhere('the new policy', (s) => (s.policy?.generation ?? 0) > before);
      await t.outputLine('the SIGHUP reload logged', /"trigger":"SIGHUP".*policy reloaded/);

      expect(get(bob, '/after').code).toBe(CURL_COULDNT_CONNECT);
      const rec = await waitForRecord(t.dataDir, 'bob', 'maintenance block', (x) => x.type === 'policy' && x.rule === 'maintenance');
      expect(rec).toMatchObject({ action: 'block', dst: INTERNAL, dstPort: 8080 });
      held.stdin?.write('go\n');
      await waitFor('the held flow\'s second answer', () => (heldOut.includes('internal /two') ? true : undefined), 10_000);
      expect(bob.ns.execOk('wg', ['show', bob.ifname, 'latest-handshakes'])).toBe(handshakeBefore);
    });

    test('an invalid file keeps the running policy; the error with file and line is logged and shown by sightline status', async () => {
      const before = await settled();
      const errorsBefore = before.policy?.errors ?? 0;
      const gen = before.policy?.generation;
      t.writeConfig(policy(['    - { id: broken, action: deny }']));
      t.concProcess?.kill('SIGHUP');
      await t.statusWhere('the failed reload', (x) => (x.policy?.errors ?? 0) > errorsBefore);
      const s = await settled();
      expect(s.policy?.generation).toBe(gen);
      expect(s.policy?.lastError?.message).toMatch(/sightline\.yaml:\d+:\d+: policy\.rules\.0\.action: expected one of/);
      await t.outputLine('the failed reload logged', /policy reload failed; the running policy stays/);
      const status = t.sightline(['status']);
      expect(status.stdout).toContain('last reload FAILED');
      expect(status.stdout).toMatch(/sightline\.yaml:\d+:\d+: policy\.rules\.0\.action/);
      // Still the policy from before: maintenance blocks bob.
      expect(get(bob, '/still').code).toBe(CURL_COULDNT_CONNECT);
    });
  });
});
