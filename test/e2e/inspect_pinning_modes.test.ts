// Issue 8, tls.pinning.mode and tls.nonTls end to end through the tunnel:
// - approve: a learned host waits for `sightline pinned approve`, which the
//   running concentrator picks up without a restart; the approval still
//   reaches only a destination that proves the name; `pinned remove` undoes it;
// - off: nothing is learned and nothing is bypassed by pinning;
// - nonTls allow: plain HTTP and a server-speaks-first protocol pass on 443.
// After each, the same user's ordinary inspected traffic still works.
import { readFileSync } from 'node:fs';
import { describeE2E } from '../helpers/e2e';
import { Topology } from '../helpers/topology';
import { GOOD_SITES, PINNED_SITE, setUpInspection, type InspectRig } from '../helpers/inspect_lab';
import { CURL_PEER_FAILED_VERIFICATION, CURL_SSL_CONNECT_ERROR, curl, userRecords, waitForRecord } from '../helpers/inspect_client';
import {
  IMPOSTOR_SELF_SIGNED_V4, PLAIN_HTTP_PATH, PLAIN_HTTP_V4, SSH_BANNER_V4, SSH_GREETING,
  bypassLabListeners, firstCertIn, originLeafFingerprint, rawTcp, spoofed,
} from '../helpers/bypass_lab';
import { sleep, waitFor } from '../../scripts/lab/netns';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'openssl'];
const THRESHOLD = 3;
/** "Within a couple of seconds": the concentrator re-reads the admin file every second. */
const APPLY_WAIT_MS = 5_000;

function setUp(t: Topology, tlsLines: string[]): Promise<InspectRig> {
  return setUpInspection(t, ['pinning:', `  threshold: ${THRESHOLD}`, ...tlsLines], bypassLabListeners);
}

/** A pinned app's attempt: trusts only the origin's own root. */
const pinnedApp = (rig: InspectRig) => curl(rig.alice, PINNED_SITE, { cacert: rig.origins.rootFile, args: ['-w', '%{certs}'] });

const ordinaryTrafficWorks = (rig: InspectRig): void => {
  expect(curl(rig.alice, GOOD_SITES[0], { cacert: rig.companyCa }).code).toBe(0);
};

describeE2E('tls.pinning.mode approve: a learned host waits for an admin', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;
  const pinnedLine = (): string | undefined => t.sightline(['pinned', 'list']).stdout.split('\n').find((l) => l.startsWith(`alice\t${PINNED_SITE.host}\t`));

  beforeAll(async () => {
    rig = await setUp(t, ['  mode: approve']);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  test(`after ${THRESHOLD} certificate alerts the host is learned as pending, and still inspected`, async () => {
    for (let i = 0; i < THRESHOLD; i++) expect(pinnedApp(rig).code).toBe(CURL_PEER_FAILED_VERIFICATION);
    const pinned = await waitForRecord(t.dataDir, 'alice', 'tls_pinned record', (r) => r.type === 'tls_pinned');
    expect(pinned).toMatchObject({ host: PINNED_SITE.host, mode: 'approve', bypass: false });
    expect(pinnedApp(rig).code).toBe(CURL_PEER_FAILED_VERIFICATION);
    ordinaryTrafficWorks(rig);
  });

  test('`sightline pinned list` shows it clearly marked as pending approval', async () => {
    const line = await waitFor('pinned list to show the pending host', pinnedLine, APPLY_WAIT_MS, 250);
    expect(line).toContain('PENDING approval');
    expect(line).toContain(`failures ${THRESHOLD}`);
  });

  test('`sightline pinned approve` takes effect without a restart: the app then reaches the genuine origin', async () => {
    const r = t.sightline(['pinned', 'approve', 'alice', PINNED_SITE.host]);
    expect(r.code).toBe(0);
    const ok = await waitFor('the approval to take effect', () => {
      const c = pinnedApp(rig);
      return c.code === 0 ? c : undefined;
    }, APPLY_WAIT_MS, 500);
    expect(firstCertIn(ok.stdout)?.fingerprint256).toBe(originLeafFingerprint(rig.origins, PINNED_SITE.host));
    const bypass = await waitForRecord(t.dataDir, 'alice', 'tls_bypass record', (x) => x.type === 'tls_bypass');
    expect(bypass).toMatchObject({ host: PINNED_SITE.host, reason: 'pinned-learned' });
    expect(pinnedLine()).toContain('APPROVED');
    ordinaryTrafficWorks(rig);
  });

  test('an approved name sent to a server that cannot prove it is still inspected and refused', async () => {
    expect(curl(rig.alice, spoofed(PINNED_SITE, IMPOSTOR_SELF_SIGNED_V4), { cacert: rig.origins.rootFile }).code).toBe(CURL_SSL_CONNECT_ERROR);
    const refused = await waitForRecord(t.dataDir, 'alice', 'tls_bypass_refused record', (x) => x.type === 'tls_bypass_refused');
    expect(refused).toMatchObject({ bypass: 'pinned-learned', reason: 'self_signed', dst: `${IMPOSTOR_SELF_SIGNED_V4}:443` });
  });

  test('`sightline pinned remove` makes the host inspected again without a restart', async () => {
    expect(t.sightline(['pinned', 'remove', 'alice', PINNED_SITE.host]).code).toBe(0);
    await waitFor('the removal to take effect', () => (pinnedApp(rig).code === CURL_PEER_FAILED_VERIFICATION ? true : undefined), APPLY_WAIT_MS, 500);
    expect(pinnedLine()).toBeUndefined();
    ordinaryTrafficWorks(rig);
  });
});

describeE2E('tls.pinning.mode off and tls.nonTls allow', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;
  const records = (type: string): Array<Record<string, unknown>> => userRecords(t.dataDir, 'alice').filter((r) => r.type === type);

  beforeAll(async () => {
    rig = await setUp(t, ['  mode: off', 'nonTls: allow']);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  test('mode off never learns: every refusal is logged, none is learned, the app stays inspected', async () => {
    for (let i = 0; i <= THRESHOLD; i++) expect(pinnedApp(rig).code).toBe(CURL_PEER_FAILED_VERIFICATION);
    await waitFor('four tls_client_rejected records', () => (records('tls_client_rejected').length === THRESHOLD + 1 ? true : undefined), 5_000, 100);
    expect(records('tls_client_rejected').every((r) => r.learned === false && r.alert === 'unknown_ca')).toBe(true);
    expect(records('tls_pinned')).toEqual([]);
    expect(t.sightline(['pinned', 'list']).stdout).toBe('tls.pinning.mode: off\nno pinned hosts\n');
    ordinaryTrafficWorks(rig);
  });

  test('mode off ignores approvals too (the CLI says so)', async () => {
    const r = t.sightline(['pinned', 'approve', 'alice', PINNED_SITE.host]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('tls.pinning.mode is off');
    await sleep(2_500);
    expect(pinnedApp(rig).code).toBe(CURL_PEER_FAILED_VERIFICATION);
    expect(records('tls_bypass')).toEqual([]);
  });

  test('nonTls allow: plain HTTP on port 443 passes and is logged as allowed non_tls "http"', async () => {
    const r = rig.alice.ns.exec('curl', ['-sS', '--max-time', '10', `http://${PLAIN_HTTP_V4}:443${PLAIN_HTTP_PATH}`], { timeoutMs: 15_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(rig.origins.rootFile, 'utf8'));
    const rec = await waitForRecord(t.dataDir, 'alice', 'non_tls record', (x) => x.type === 'non_tls' && x.dst === `${PLAIN_HTTP_V4}:443`);
    expect(rec).toMatchObject({ guess: 'http', from: 'client', outcome: 'allow' });
  });

  test('nonTls allow: a server-speaks-first protocol (SSH greeting) works both ways and is logged as "ssh" from the server', async () => {
    const r = rawTcp(rig.alice, SSH_BANNER_V4, 443, null, 3_000, 'hello');
    expect(r.received).toBe(`${SSH_GREETING}echo:hello`);
    const rec = await waitForRecord(t.dataDir, 'alice', 'non_tls ssh record', (x) => x.type === 'non_tls' && x.dst === `${SSH_BANNER_V4}:443`);
    expect(rec).toMatchObject({ guess: 'ssh', from: 'server', outcome: 'allow' });
    ordinaryTrafficWorks(rig);
  });
});
