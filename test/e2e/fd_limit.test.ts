// Issue 8, bounded resources: one employee holding hundreds of connections
// must not take the concentrator's last file descriptors. Started with a low
// RLIMIT_NOFILE (prlimit), the concentrator refuses new flows beyond its
// budget (TCP reset, UDP port unreachable, counter fd_limit, one log line)
// while the WireGuard tunnel, new handshakes, per-user logs, SQLite (a peer
// added meanwhile) and `sightline status` keep working.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, SERVER_V4, Topology, startUdpEcho, udpExchange, ROOT, type Client } from '../helpers/topology';
import { waitFor } from '../../scripts/lab/netns';

jest.setTimeout(300_000);

const NOFILE = 256;
const HOLD_PORT = 9000;
const CONNECTIONS = 300;
const ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'origin_server.js');

/** Opens CONNECTIONS TCP connections (10 at a time) and holds them; "close N" on stdin closes N of them. */
const HOLDER = `
  const net = require('net'); const held = []; let connected = 0, refused = 0, started = 0, settled = 0; const other = {};
  const settle = () => { if (++settled === ${CONNECTIONS}) console.log(JSON.stringify({ connected, refused, other })); };
  const next = () => {
    if (started >= ${CONNECTIONS}) return;
    started++;
    const s = net.connect({ host: ${JSON.stringify(ORIGIN_V4)}, port: ${HOLD_PORT} });
    let done = false;
    const end = (kind) => { if (done) return; done = true; kind(); settle(); next(); };
    s.setTimeout(20000, () => end(() => { other.timeout = (other.timeout || 0) + 1; s.destroy(); }));
    s.on('connect', () => end(() => { connected++; s.setTimeout(0); held.push(s); }));
    s.on('error', (e) => end(() => { if (e.code === 'ECONNREFUSED') refused++; else other[e.code] = (other[e.code] || 0) + 1; }));
  };
  for (let i = 0; i < 10; i++) next();
  process.stdin.on('data', (d) => { const n = Number(/close (\\d+)/.exec(d.toString())?.[1] ?? 0); for (const s of held.splice(0, n)) s.end(); console.log('closed ' + n); });
  process.stdin.on('end', () => process.exit(0));`;

function ping(c: Client): boolean {
  return c.ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', SERVER_V4], { timeoutMs: 15_000 }).code === 0;
}

describeE2E('a concentrator near its file-descriptor limit', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'ping', 'curl', 'prlimit'], () => {
  const t = new Topology();
  let alice: Client;
  let holderOut = '';
  let holder: ReturnType<Client['ns']['spawn']>;

  beforeAll(async () => {
    t.setup();
    t.origin.spawn('node', ['-e', `require('net').createServer((s) => s.on('error', () => undefined)).listen(${HOLD_PORT})`]);
    t.origin.spawn('node', [ORIGIN, '80']);
    startUdpEcho(t);
    await t.startConcentrator({ wrap: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`] });
    alice = await t.client('alice');
    await waitFor('alice reachable', () => (ping(alice) ? true : undefined), 20_000, 200);
    holder = alice.ns.spawn('node', ['-e', HOLDER]);
    holder.stdout?.on('data', (c: Buffer) => (holderOut += c.toString()));
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('flows beyond the descriptor budget are refused with a reset at once, counted as fd_limit and logged once', async () => {
    const result = await waitFor('all connections settled', () => {
      const line = holderOut.split('\n').find((l) => l.startsWith('{'));
      return line === undefined ? undefined : (JSON.parse(line) as { connected: number; refused: number; other: Record<string, number> });
    }, 120_000, 200);
    expect(result.other).toEqual({});
    expect(result.connected).toBeGreaterThan(100);
    expect(result.refused).toBeGreaterThan(0);
    expect(result.connected + result.refused).toBe(CONNECTIONS);
    const s = await t.statusWhere('fd_limit counted', (st) => (st.counters.stack?.fd_limit ?? 0) >= result.refused);
    expect(s.counters.fds.limit).toBe(NOFILE);
    expect(s.counters.fds.open).toBeLessThan(NOFILE);
    await t.outputLine('the fd_limit refusal logged', /"reason":"fd_limit"/);
    const lines = t.concOutput.split('\n').filter((l) => l.includes('"reason":"fd_limit"') && !l.includes('"more"'));
    expect(lines).toHaveLength(1);
  });

  test('while saturated a new UDP flow gets port unreachable, and the tunnel itself keeps working', () => {
    const udp = alice.ns.exec('python3', [join(ROOT, 'test', 'helpers', 'hostile_client.py'), 'udp', ORIGIN_V4, '7', alice.ifname, '3'], { timeoutMs: 15_000 });
    expect(JSON.parse(udp.stdout)).toEqual({ result: 'error', code: 'ECONNREFUSED' });
    expect(ping(alice)).toBe(true);
  });

  test('while saturated, sightline status works and a peer added meanwhile (SQLite) handshakes', async () => {
    const status = t.sightline(['status']);
    expect(status.code).toBe(0);
    // A concentrator that hit EMFILE stops rewriting status.json: the CLI would warn that it is stale.
    expect(status.stderr).not.toMatch(/status is \d+ s old/);
    expect(status.stdout).toMatch(/stack\.fd_limit\t\d+/);
    const bob = await t.client('bob');
    await waitFor('bob reachable', () => (ping(bob) ? true : undefined), 20_000, 200);
  });

  test("while saturated, closing flows still writes their records to the user's log", async () => {
    holder.stdin?.write('close 10\n');
    const logFile = join(t.dataDir, 'logs', 'alice.ndjson');
    const flows = await waitFor('10 flow records', () => {
      const n = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"type":"flow"') && l.includes(`"dstPort":${HOLD_PORT}`)).length : 0;
      return n >= 10 ? n : undefined;
    }, 30_000, 200);
    expect(flows).toBeGreaterThanOrEqual(10);
  });

  test('once the connections are released, new flows are admitted again and no exception reached the process', async () => {
    holder.stdin?.end();
    await t.statusWhere('egress sockets released', (st) => (st.counters.fds?.egress_sockets ?? Infinity) < 10, 30_000);
    // The budget re-measures on its own timer; retry for a few seconds.
    const body = await waitFor('a new flow admitted', () => {
      const r = alice.ns.exec('curl', ['-sS', '--max-time', '5', `http://${ORIGIN_V4}/`], { timeoutMs: 10_000 });
      return r.stdout === 'hello from origin\n' ? r.stdout : undefined;
    }, 20_000, 500);
    expect(body).toBe('hello from origin\n');
    expect(udpExchange(alice.ns, ORIGIN_V4, 7, ['back'])).toEqual(['echo:back']);
    const s = t.status();
    expect(s.counters.process).toEqual({ uncaught_exception: 0, unhandled_rejection: 0, wireguard_core_error: 0 });
    expect(t.concProcess?.exitCode).toBeNull();
  });
});
