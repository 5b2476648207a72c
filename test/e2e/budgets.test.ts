// Issue 8, bounded resources: one employee opening many downloads it never
// reads makes the concentrator hold only that employee's buffer budget, and
// another employee's transfer goes on untouched.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeE2E } from '../helpers/e2e';
import { userRecords } from '../helpers/inspect_client';
import { ORIGIN_V4, ROOT, Topology, type Client } from '../helpers/topology';
import { patternDigest } from '../../scripts/lab/origin_server';
import { sleep, waitFor } from '../../scripts/lab/netns';

jest.setTimeout(300_000);

const ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'origin_server.js');
const MB = 1024 * 1024;
const BUDGET = 4 * MB;
const SLOW_FLOWS = 30;

/** A client inside the namespace: SLOW_FLOWS downloads of 100 MB each, requested and then never read. */
const SLOW_READER = `
  const net = require('net');
  for (let i = 0; i < ${SLOW_FLOWS}; i++) {
    const s = net.connect(80, ${JSON.stringify(ORIGIN_V4)}, () => {
      s.write('GET /bytes/${100 * MB} HTTP/1.1\\r\\nhost: origin\\r\\n\\r\\n');
      s.pause();
    });
    s.on('error', () => undefined);
  }
  setInterval(() => undefined, 1000);`;

function curl(c: Client, args: string[], timeoutMs = 60_000) {
  return c.ns.exec('curl', ['-sS', '--max-time', String(Math.floor(timeoutMs / 1000)), ...args], { timeoutMs: timeoutMs + 5000 });
}

interface BufferStatus {
  buffers?: { usedBytes: number; users: Record<string, number> };
  counters: Record<string, Record<string, number>>;
}

describeE2E('buffer budgets per user', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'sha256sum'], () => {
  const t = new Topology();
  let alice: Client;
  let bob: Client;
  let slow: ChildProcess | null = null;

  beforeAll(async () => {
    t.setup(['limits:', `  maxBufferedBytesPerUser: ${BUDGET}`].join('\n'));
    t.origin.spawn('node', [ORIGIN, '80']);
    await t.startConcentrator();
    alice = await t.client('alice');
    bob = await t.client('bob');
    await sleep(200);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  const status = () => t.status() as unknown as BufferStatus;

  /** The first status.json whose stack counters satisfy `pred`, or (after 10 s) the last one, for the failure message. */
  async function statusAfter(what: string, pred: (stack: Record<string, number>) => boolean): Promise<BufferStatus> {
    try {
      return await t.statusWhere(what, (x) => pred((x as unknown as BufferStatus).counters.stack ?? {}), 10_000) as unknown as BufferStatus;
    } catch {
      return status();
    }
  }

  test('a user whose many downloads are never read is held to its budget, its new flows are refused and logged, and another user downloads 50 MB meanwhile', async () => {
    slow = alice.ns.spawn('node', ['-e', SLOW_READER]);
    // The downloads fill the client's socket buffers, then the concentrator's, up to alice's budget.
    const full = await t.statusWhere('alice at her buffer budget', (s) => ((s as unknown as BufferStatus).buffers?.users.alice ?? 0) >= BUDGET, 60_000);
    expect(full).toBeDefined();

    const refused = curl(alice, [`http://${ORIGIN_V4}/`], 15_000);
    // status.json is rewritten at most once a second: the refusal shows in the next one, not
    // necessarily in the file as it is right now (reading it at once failed under load).
    const after = await statusAfter('the refusal counted in status.json', (c) => (c.tcp_flow_refused_user_budget ?? 0) >= 1);
    // Which path refused, and what curl saw, are in the failure message.
    const evidence = { curlExit: refused.code, curlStderr: refused.stderr, stack: after.counters.stack };
    expect(evidence).toMatchObject({ curlStderr: expect.stringMatching(/Connection refused|Couldn't connect/), stack: { tcp_flow_refused_user_budget: expect.any(Number) } });
    expect(evidence.stack.tcp_flow_refused_concentrator_budget).toBeUndefined();

    const n = 50 * MB;
    const r = bob.ns.exec('sh', ['-c', `curl -sS --max-time 120 http://${ORIGIN_V4}/bytes/${n} | sha256sum`], { timeoutMs: 130_000 });
    expect(r.stdout.split(' ')[0]).toBe(patternDigest(n));

    // Still bounded: the budget plus at most what each flow had in hand when it was reached.
    const s = status();
    expect(s.buffers?.users.alice ?? 0).toBeLessThan(BUDGET + SLOW_FLOWS * 192 * 1024);
    expect(s.counters.stack.tcp_flow_refused_concentrator_budget).toBeUndefined();

    const record = await waitFor('flow_refused in alice\'s log', () => userRecords(t.dataDir, 'alice').find((x) => x.type === 'flow_refused'), 15_000, 200);
    expect(record).toMatchObject({ user: 'alice', reason: 'user_buffer_budget', proto: 'tcp', dst: ORIGIN_V4, dstPort: 80, limitBytes: BUDGET });
    const bobLog = join(t.dataDir, 'logs', 'bob.ndjson');
    if (existsSync(bobLog)) expect(readFileSync(bobLog, 'utf8')).not.toContain('flow_refused');
  });

  test("once the unread downloads end, the same user's ordinary traffic works again", async () => {
    slow?.kill('SIGKILL');
    await t.statusWhere("alice's buffers released", (s) => ((s as unknown as BufferStatus).buffers?.users.alice ?? 0) < 256 * 1024, 60_000);
    expect(curl(alice, [`http://${ORIGIN_V4}/`]).stdout).toBe('hello from origin\n');
    const n = 20 * MB;
    const r = alice.ns.exec('sh', ['-c', `curl -sS --max-time 120 http://${ORIGIN_V4}/bytes/${n} | sha256sum`], { timeoutMs: 130_000 });
    expect(r.stdout.split(' ')[0]).toBe(patternDigest(n));
  });
});
