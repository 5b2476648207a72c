// Issue: userspace TCP/IP stack and socket egress — full-tunnel browsing.
// wireguard-go clients (their kernels' TCP is the peer) through the
// concentrator's userspace TCP to origins in another namespace.
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, ORIGIN_V6, ROOT, Topology, type Client } from '../helpers/topology';
import { patternDigest } from '../../scripts/lab/origin_server';
import { sleep } from '../../scripts/lab/netns';
import { makeTestPki } from '../helpers/origin_pki';

jest.setTimeout(600_000);

const ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'origin_server.js');
const RELAY = join(ROOT, 'dist', 'scripts', 'lab', 'udp_relay.js');
const MB = 1024 * 1024;

function curl(c: Client, args: string[], timeoutMs = 120_000) {
  return c.ns.exec('curl', ['-sS', '--max-time', String(Math.floor(timeoutMs / 1000)), ...args], { timeoutMs: timeoutMs + 5000 });
}

/** The client kernel's counts of received IP headers and TCP segments with a bad checksum. */
function checksumErrors(c: Client): Record<string, number> {
  const out = c.ns.execOk('nstat', ['-asz', 'TcpInCsumErrors', 'IpInHdrErrors']);
  const counts: Record<string, number> = { TcpInCsumErrors: -1, IpInHdrErrors: -1 };
  for (const line of out.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name in counts) counts[name] = Number(value);
  }
  for (const [name, value] of Object.entries(counts)) if (!(value >= 0)) throw new Error(`nstat printed no ${name}: ${out}`);
  return counts;
}

describeE2E('TCP through the tunnel (socket egress)', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'iperf3', 'sha256sum', 'head', 'nstat'], () => {
  const t = new Topology();
  let alice: Client;
  let caFile: string;

  beforeAll(async () => {
    t.setup();
    const pki = makeTestPki(t.dataDir, [ORIGIN_V4, ORIGIN_V6, 'origin.test']);
    caFile = pki.caFile;
    t.origin.spawn('node', [ORIGIN, '80', '8443', pki.certFile, pki.keyFile]);
    t.origin.spawn('iperf3', ['-s', '-p', '5201']);
    await t.startConcentrator();
    alice = await t.client('alice');
    await sleep(200);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('curl over HTTP reaches the origin, IPv4 and IPv6', () => {
    expect(curl(alice, [`http://${ORIGIN_V4}/`]).stdout).toBe('hello from origin\n');
    expect(curl(alice, [`http://[${ORIGIN_V6}]/`]).stdout).toBe('hello from origin\n');
  });

  test('curl over HTTPS on a non-inspected port is passed through untouched (origin certificate)', () => {
    const r = curl(alice, ['--cacert', caFile, '--resolve', `origin.test:8443:${ORIGIN_V4}`, '-w', '%{ssl_verify_result}', 'https://origin.test:8443/']);
    expect(r.stdout).toBe('hello from origin\n0');
  });

  test('a refused upstream port gives the client an RST (connection refused), never accept-then-close', () => {
    const r = curl(alice, [`http://${ORIGIN_V4}:9/`], 10_000);
    expect(r.stderr).toMatch(/Connection refused|Couldn't connect/);
  });

  test('200 MB download: SHA-256 equal at both ends, and no segment arrived with a bad checksum', () => {
    const n = 200 * MB;
    // The concentrator reuses its packets' memory once sealed. A segment
    // partly written over before sealing would reach the client with a bad
    // checksum, and TCP would repair it by retransmission, unseen by the
    // SHA-256: the client's checksum counters see it (a whole segment written
    // over by another is packet_reuse.test.ts's case).
    const before = checksumErrors(alice);
    const r = alice.ns.exec('sh', ['-c', `curl -sS --max-time 300 http://${ORIGIN_V4}/bytes/${n} | sha256sum`], { timeoutMs: 310_000 });
    expect(r.stdout.split(' ')[0]).toBe(patternDigest(n));
    expect(checksumErrors(alice)).toEqual(before);
  });

  test('200 MB upload: SHA-256 equal at both ends', () => {
    const n = 200 * MB;
    const file = join(t.dataDir, 'upload.bin');
    alice.ns.execOk('sh', ['-c', `head -c ${n} /dev/urandom > ${file}`]);
    const local = alice.ns.execOk('sha256sum', [file]).split(' ')[0];
    const r = curl(alice, ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `http://${ORIGIN_V4}/sha256`], 300_000);
    expect(JSON.parse(r.stdout)).toEqual({ sha256: local, length: n });
  });

  test('iperf3 in both directions', () => {
    for (const reverse of [[], ['-R']]) {
      const r = alice.ns.exec('iperf3', ['-c', ORIGIN_V4, '-p', '5201', '-t', '3', '-J', ...reverse], { timeoutMs: 30_000 });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      expect(j.end.sum_received.bits_per_second).toBeGreaterThan(1e6);
    }
  });

  test('500 concurrent connections all complete', () => {
    const script = `
      const http = require('http'); let ok = 0, fail = 0; const N = 500;
      const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
      for (let i = 0; i < N; i++) {
        http.get({ host: ${JSON.stringify(ORIGIN_V4)}, port: 80, path: '/bytes/20000', agent }, (res) => {
          let n = 0; res.on('data', (c) => n += c.length); res.on('end', () => { n === 20000 ? ok++ : fail++; if (ok + fail === N) done(); });
        }).on('error', () => { fail++; if (ok + fail === N) done(); });
      }
      function done() { console.log(JSON.stringify({ ok, fail })); process.exit(0); }
      setTimeout(() => { console.log(JSON.stringify({ ok, fail, timeout: true })); process.exit(0); }, 60000);`;
    const out = alice.ns.execOk('node', ['-e', script], { timeoutMs: 70_000 });
    expect(JSON.parse(out)).toEqual({ ok: 500, fail: 0 });
  });

  test('under 3% loss, reordering and duplication: 20 transfers of 20 MB, every SHA-256 equal', async () => {
    const bob = await t.client('bob');
    const concSide = bob.underlay.replace(/\.2$/, '.1');
    bob.ns.spawn('node', [RELAY, '127.0.0.1', '45100', concSide, '51820', JSON.stringify({ loss: 0.03, reorder: 0.03, duplicate: 0.01, seed: 42 })]);
    await sleep(300);
    bob.ns.execOk('wg', ['set', bob.ifname, 'peer', t.status().publicKey, 'endpoint', '127.0.0.1:45100']);
    const n = 20 * MB;
    const want = patternDigest(n);
    for (let i = 0; i < 20; i++) {
      const r = bob.ns.exec('sh', ['-c', `curl -sS --max-time 120 http://${ORIGIN_V4}/bytes/${n} | sha256sum`], { timeoutMs: 130_000 });
      expect({ i, sha: r.stdout.split(' ')[0] }).toEqual({ i, sha: want });
    }
  });
});

