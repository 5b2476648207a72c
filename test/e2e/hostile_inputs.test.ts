// Issue 8, "No input stops the service": one employee sends what browsers and
// scanners send (UDP and TCP to unroutable addresses, broadcast, multicast,
// port 0) while another employee downloads in bulk. The concentrator answers
// with the ICMP error that applies, or nothing, and keeps serving everyone;
// nothing reaches its process-level exception handler.
// The concentrator's namespace has no default route, IPv4 or IPv6.
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, ROOT, SERVER_V4, Topology, startUdpEcho, udpExchange, type Client } from '../helpers/topology';
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
});
