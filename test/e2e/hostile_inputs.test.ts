// Issue 8, "No input stops the service": one employee sends what browsers and
// scanners send (UDP and TCP to unroutable addresses, broadcast, multicast,
// port 0) while another employee downloads in bulk. The concentrator answers
// with the ICMP error that applies, or nothing, and keeps serving everyone;
// nothing reaches its process-level exception handler.
// The concentrator's namespace has no default route, IPv4 or IPv6.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, ORIGIN_V6, ROOT, SERVER_V4, Topology, startUdpEcho, udpExchange, type Client, type StatusJson } from '../helpers/topology';
import { patternDigest } from '../../scripts/lab/origin_server';
import { sleep, waitFor } from '../../scripts/lab/netns';

jest.setTimeout(300_000);

const ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'origin_server.js');
const HOSTILE = join(ROOT, 'test', 'helpers', 'hostile_client.py');
const UNROUTABLE_V4 = '203.0.113.1';
const UNROUTABLE_V6 = '2001:db8::1';
const ORIGIN_BROADCAST = '10.202.0.255';
const BULK_BYTES = 24 * 1024 * 1024;

interface HostileResult {
  result: 'reply' | 'connected' | 'error' | 'nothing' | 'sent';
  code?: string;
}

function hostile(c: Client, mode: 'udp' | 'tcp' | 'syn', host: string, port: number, waitSeconds = 3): HostileResult {
  const out = c.ns.execOk('python3', [HOSTILE, mode, host, String(port), c.ifname, String(waitSeconds)], { timeoutMs: (waitSeconds + 10) * 1000 });
  return JSON.parse(out.trim()) as HostileResult;
}

/** An ICMP error of some kind or silence: what the sender may get for a destination nobody may reach. */
function refusedOrIgnored(r: HostileResult): boolean {
  return r.result === 'nothing' || r.result === 'error';
}

function ping(c: Client, target: string): boolean {
  return c.ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', target], { timeoutMs: 15_000 }).code === 0;
}

describeE2E('hostile inputs from a tunnel client', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping', 'curl', 'python3', 'sha256sum', 'bash'], () => {
  const t = new Topology();
  let alice: Client;
  let bob: Client;
  let bulkResults: string;
  let bulkStop: string;

  /** The same user's ordinary traffic still works, the process lives, and no exception reached it. */
  async function expectStillServing(c: Client): Promise<void> {
    // Synchronous execs block this event loop: let the concentrator's exit, if any, be seen.
    await sleep(200);
    const exited = t.concProcess?.exitCode !== null || t.concProcess?.signalCode !== null;
    expect({ exitCode: t.concProcess?.exitCode, signal: t.concProcess?.signalCode, output: exited ? t.concOutput.slice(-3000) : '' }).toEqual({ exitCode: null, signal: null, output: '' });
    expect(ping(c, SERVER_V4)).toBe(true);
    expect(udpExchange(c.ns, ORIGIN_V4, 7, ['still-there'])).toEqual(['echo:still-there']);
    expect(c.ns.exec('curl', ['-sS', '--max-time', '20', `http://${ORIGIN_V4}/`], { timeoutMs: 25_000 }).stdout).toBe('hello from origin\n');
    const s = await t.statusWhere('a fresh status', () => true);
    expect(s.counters.process?.uncaught_exception ?? 0).toBe(0);
    expect(s.counters.process?.unhandled_rejection ?? 0).toBe(0);
  }

  beforeAll(async () => {
    t.setup();
    t.origin.spawn('node', [ORIGIN, '80']);
    startUdpEcho(t);
    await t.startConcentrator();
    alice = await t.client('alice');
    bob = await t.client('bob');
    await waitFor('alice reachable', () => (ping(alice, SERVER_V4) ? true : undefined), 20_000, 200);
    // Bob downloads back to back, rate-limited, until the last test stops him; every digest is kept.
    bulkResults = join(t.dataDir, 'bulk.sha256');
    bulkStop = join(t.dataDir, 'bulk.stop');
    const loop = `while [ ! -e ${bulkStop} ]; do curl -sS --max-time 120 --limit-rate 8M http://${ORIGIN_V4}/bytes/${BULK_BYTES} | sha256sum | cut -d' ' -f1 >> ${bulkResults}; done; echo done >> ${bulkResults}`;
    bob.ns.spawn('bash', ['-c', loop]);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('UDP to an unroutable IPv6 address (2001:db8::1, no IPv6 route) gets ICMPv6 no-route and does not stop the concentrator', async () => {
    const r = hostile(alice, 'udp', UNROUTABLE_V6, 53);
    await expectStillServing(alice);
    expect(r).toEqual({ result: 'error', code: 'ENETUNREACH' });
  });

  test('UDP to an unroutable IPv4 address gets ICMP net unreachable and does not stop the concentrator', async () => {
    const r = hostile(alice, 'udp', UNROUTABLE_V4, 53);
    await expectStillServing(alice);
    expect(r).toEqual({ result: 'error', code: 'ENETUNREACH' });
  });

  test('TCP to an unroutable IPv6 address is refused with ICMPv6 no-route at once', async () => {
    const r = hostile(alice, 'tcp', UNROUTABLE_V6, 443);
    await expectStillServing(alice);
    expect(r).toEqual({ result: 'error', code: 'ENETUNREACH' });
  });

  test('TCP to an unroutable IPv4 address is refused with ICMP net unreachable at once', async () => {
    const r = hostile(alice, 'tcp', UNROUTABLE_V4, 80);
    await expectStillServing(alice);
    expect(r).toEqual({ result: 'error', code: 'ENETUNREACH' });
  });

  test("UDP and TCP to the origin subnet's broadcast address get an ICMP error or nothing, and stop nothing", async () => {
    const udp = hostile(alice, 'udp', ORIGIN_BROADCAST, 7);
    const tcp = hostile(alice, 'tcp', ORIGIN_BROADCAST, 80);
    await expectStillServing(alice);
    // What came back, when it was neither an ICMP error nor silence (a reply, a connection).
    expect([{ udp }, { tcp }].filter((r) => !refusedOrIgnored(Object.values(r)[0]))).toEqual([]);
  });

  test('UDP to multicast groups (224.0.0.251:5353, [ff02::fb]:5353) gets an ICMP error or nothing, and stops nothing', async () => {
    const v4 = hostile(alice, 'udp', '224.0.0.251', 5353);
    const v6 = hostile(alice, 'udp', 'ff02::fb', 5353);
    await expectStillServing(alice);
    expect({ v4: refusedOrIgnored(v4), v6: refusedOrIgnored(v6) }).toEqual({ v4: true, v6: true });
  });

  test('a TCP SYN to multicast groups (which no socket API sends) stops nothing', async () => {
    expect(hostile(alice, 'syn', '224.0.0.251', 5353)).toEqual({ result: 'sent' });
    expect(hostile(alice, 'syn', 'ff02::fb', 5353)).toEqual({ result: 'sent' });
    await expectStillServing(alice);
  });

  test('UDP to port 0 gets ICMP port unreachable', async () => {
    const v4 = hostile(alice, 'udp', ORIGIN_V4, 0);
    const v6 = hostile(alice, 'udp', ORIGIN_V6, 0);
    await expectStillServing(alice);
    expect({ v4, v6 }).toEqual({ v4: { result: 'error', code: 'ECONNREFUSED' }, v6: { result: 'error', code: 'ECONNREFUSED' } });
  });

  test('TCP to port 0 is dropped as malformed and counted', async () => {
    const v4 = hostile(alice, 'tcp', ORIGIN_V4, 0, 2);
    const v6 = hostile(alice, 'tcp', ORIGIN_V6, 0, 2);
    await expectStillServing(alice);
    expect({ v4, v6 }).toEqual({ v4: { result: 'nothing' }, v6: { result: 'nothing' } });
    const s = await t.statusWhere('port 0 counted', (st) => (st.counters.stack?.drop_tcp_bad_port ?? 0) >= 2);
    expect(s.counters.stack.drop_tcp_bad_port).toBeGreaterThanOrEqual(2);
  });

  test('a burst of 2,000 datagrams to unroutable, broadcast and multicast destinations costs a few log lines, not one per datagram', async () => {
    const before = t.concOutput.split('\n').length;
    const aliceRx = (st: StatusJson) => st.peers.find((p) => p.name === 'alice')?.rxBytes ?? 0;
    const rxBefore = aliceRx(t.status());
    const script = `
import socket, time
targets = [(socket.AF_INET6, '${UNROUTABLE_V6}'), (socket.AF_INET, '${UNROUTABLE_V4}'), (socket.AF_INET, '${ORIGIN_BROADCAST}'), (socket.AF_INET, '224.0.0.251')]
socks = [socket.socket(f, socket.SOCK_DGRAM) for f, _ in targets]
for i in range(500):
    for s, (_, host) in zip(socks, targets):
        try:
            s.sendto(b'burst', (host, 1024 + i))
        except OSError:
            pass  # an ICMP error reported on the next send
    time.sleep(0.002)  # a burst the client's own WireGuard queue can carry
print('ok')`;
    expect(alice.ns.execOk('python3', ['-c', script], { timeoutMs: 60_000 }).trim()).toBe('ok');
    await expectStillServing(alice);
    // Most of the burst reached the concentrator (each datagram is a transport message of at least 64 bytes)...
    const s = await t.statusWhere('the burst received', (st) => aliceRx(st) - rxBefore >= 1500 * 64);
    expect(aliceRx(s) - rxBefore).toBeGreaterThanOrEqual(1500 * 64);
    // ...and cost a handful of log lines: the first of each reason, the rest summed up later.
    expect(t.concOutput.split('\n').length - before).toBeLessThan(50);
  });

  test('a flood of 3,000 DNS queries costs at most the burst in dns records: the rest are answered REFUSED, and the next record says how many', async () => {
    const log = join(t.dataDir, 'logs', 'alice.ndjson');
    const dnsRecords = (): Array<{ rateLimited?: number }> => (existsSync(log) ? readFileSync(log, 'utf8') : '').split('\n')
      .filter((l) => l.includes('"type":"dns"')).map((l) => JSON.parse(l) as { rateLimited?: number });
    const recordsBefore = dnsRecords().length;
    const refusedBefore = t.status().counters.dns?.refusedRateLimit ?? 0;
    const flood = (count: number, settleSeconds: number) => `
import json, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('${SERVER_V4}', 53))
s.setblocking(False)
rcodes = {}
def drain():
    while True:
        try:
            m = s.recv(4096)
        except OSError:
            return
        rcodes[m[3] & 0x0f] = rcodes.get(m[3] & 0x0f, 0) + 1
for i in range(${count}):
    name = b''.join(bytes([len(l)]) + l for l in [b'flood%d' % i, b'corp', b'test']) + b'\\0'
    try:
        s.send(struct.pack('>HHHHHH', i & 0xffff, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1))
    except OSError:
        pass
    if i % 4 == 3:
        time.sleep(0.002)  # a burst the client's own WireGuard queue can carry
    drain()
end = time.time() + ${settleSeconds}
while time.time() < end:
    drain()
    time.sleep(0.01)
print(json.dumps(rcodes))`;
    const started = Date.now();
    const rcodes = JSON.parse(alice.ns.execOk('python3', ['-c', flood(3000, 1.5)], { timeoutMs: 60_000 }).trim()) as Record<string, number>;
    const seconds = (Date.now() - started) / 1000;
    // The bucket holds 1000 and refills at 20 a second: everything beyond is REFUSED at once (rcode 5).
    expect(rcodes['5'] ?? 0).toBeGreaterThanOrEqual(800);
    const refusedSince = (st: StatusJson) => (st.counters.dns?.refusedRateLimit ?? 0) - refusedBefore;
    await t.statusWhere('the refusals counted', (st) => refusedSince(st) >= rcodes['5']);
    // Records only for what the bucket let through (no resolver answers here: they end as SERVFAIL or TIMEOUT).
    await sleep(4000);
    const written = dnsRecords().length - recordsBefore;
    expect(written).toBeGreaterThan(500);
    expect(written).toBeLessThanOrEqual(1000 + 20 * (seconds + 4) + 5);
    // The bucket has room again: the next query is recorded too. Each record says how many were refused
    // since the one before it, so together the records account for every refusal.
    alice.ns.execOk('python3', ['-c', flood(1, 0.2)], { timeoutMs: 20_000 });
    const reported = () => dnsRecords().slice(recordsBefore).reduce((n, r) => n + (r.rateLimited ?? 0), 0);
    // (status.json is rewritten every second: both sides are read again until they agree.)
    await waitFor('every refusal reported', () => (reported() === refusedSince(t.status()) ? true : undefined), 15_000, 200);
    expect(reported()).toBeGreaterThanOrEqual(rcodes['5']);
    await expectStillServing(alice);
  });

  test("the other user's bulk transfer ran the whole time and every download arrived intact", async () => {
    writeFileSync(bulkStop, '');
    const text = await waitFor('the bulk loop to finish', () => {
      const r = existsSync(bulkResults) ? readFileSync(bulkResults, 'utf8') : '';
      return r.endsWith('done\n') ? r : undefined;
    }, 180_000, 500);
    const digests = text.trim().split('\n').slice(0, -1);
    expect(digests.length).toBeGreaterThanOrEqual(2);
    expect(new Set(digests)).toEqual(new Set([patternDigest(BULK_BYTES)]));
    await expectStillServing(bob);
  });
});
