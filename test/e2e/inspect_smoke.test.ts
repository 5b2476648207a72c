// Smoke test of TLS inspection through the tunnel: a wireguard-go client that
// trusts only the company CA fetches from an origin whose certificate comes
// from a test "public" CA the concentrator trusts.
import { join } from 'node:path';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, ROOT, Topology, type Client } from '../helpers/topology';
import { makeTestPki } from '../helpers/origin_pki';
import { sleep } from '../../scripts/lab/netns';

jest.setTimeout(120_000);
const ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'origin_server.js');

describeE2E('TLS inspection through the tunnel (smoke)', ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl'], () => {
  const t = new Topology();
  let alice: Client;
  let companyCa: string;

  beforeAll(async () => {
    t.setup();
    const pki = makeTestPki(t.dataDir, [ORIGIN_V4, 'shop.test']);
    t.origin.spawn('node', [ORIGIN, '80', '443', pki.certFile, pki.keyFile]);
    const cfg = join(t.dataDir, 'sightline.yaml');
    appendFileSync(cfg, `\ntls:\n  upstreamCaFile: ${pki.caFile}\n`);
    await t.startConcentrator();
    companyCa = join(t.dataDir, 'company-ca.pem');
    writeFileSync(companyCa, t.sightline(['ca', 'export']).stdout);
    alice = await t.client('alice');
    await sleep(200);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('HTTPS on port 443 is inspected: the client sees a company-CA leaf and gets the page', () => {
    const r = alice.ns.exec('curl', ['-sS', '--max-time', '20', '--cacert', companyCa, '--resolve', `shop.test:443:${ORIGIN_V4}`, '-w', '\n%{http_version}', 'https://shop.test/?password=hunter2'], { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from origin\n\n1.1');
    const log = readFileSync(join(t.dataDir, 'logs', 'alice.ndjson'), 'utf8');
    expect(log).toMatch(/"type":"http"/);
    expect(log).not.toMatch(/hunter2/);
  });
});
