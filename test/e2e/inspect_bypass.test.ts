// Issue 8, "port 443 is no way around inspection", end to end through the
// tunnel with a wireguard-go client and lab origins (tls.pinning.mode learn,
// tls.nonTls block, the defaults):
// - aborted handshakes are no pinning evidence; certificate alerts are;
// - a learned bypass reaches the genuine origin only, after the concentrator
//   verified it: the learned name sent to another server is inspected;
// - plain HTTP and SSH on port 443 are blocked and logged with a guess.
// After each attack, the same user's ordinary inspected traffic still works.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describeE2E } from '../helpers/e2e';
import { Topology } from '../helpers/topology';
import { GOOD_SITES, PINNED_SITE, setUpInspection, type InspectRig } from '../helpers/inspect_lab';
import { CURL_PEER_FAILED_VERIFICATION, CURL_SSL_CONNECT_ERROR, curl, userRecords, waitForRecord } from '../helpers/inspect_client';
import {
  IMPOSTOR_OTHER_NAME_V4, IMPOSTOR_SELF_SIGNED_V4, PLAIN_HTTP_PATH, PLAIN_HTTP_V4, SSH_BANNER_V4, SSH_GREETING,
  abortHandshakes, bypassLabListeners, firstCertIn, originLeafFingerprint, rawTcp, spoofed,
} from '../helpers/bypass_lab';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'openssl'];
const THRESHOLD = 3;

describeE2E('port 443 is no way around inspection (tls.pinning.mode learn, tls.nonTls block)', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;
  const records = (type: string): Array<Record<string, unknown>> => userRecords(t.dataDir, 'alice').filter((r) => r.type === type);

  /** The same user's ordinary HTTPS: inspected under the company CA, and it works. */
  const ordinaryTrafficWorks = (): void => {
    const r = curl(rig.alice, GOOD_SITES[0], { cacert: rig.companyCa, args: ['-w', '%{certs}'] });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`hello from ${GOOD_SITES[0].host} over HTTP/1.1\n`)).toBe(true);
    expect(firstCertIn(r.stdout)?.checkIssued(new X509Certificate(readFileSync(rig.companyCa)))).toBe(true);
  };

  beforeAll(async () => {
    rig = await setUpInspection(t, ['pinning:', `  threshold: ${THRESHOLD}`], bypassLabListeners);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  describe('pinning evidence', () => {
    test('a client that aborts its handshakes (FIN, RST, or a silent close) three times each is not learned as pinned', async () => {
      for (const how of ['close', 'reset', 'silent'] as const) abortHandshakes(rig.alice, PINNED_SITE, how, THRESHOLD);
      await waitForRecord(t.dataDir, 'alice', 'nine handshake-failed flow ends', () => records('flow_end').filter((r) => r.result === 'client_handshake_failed').length >= 3 * THRESHOLD);
      expect(records('tls_client_rejected')).toEqual([]);
      expect(records('tls_pinned')).toEqual([]);
      // Still inspected: a client trusting only the origin's root is refused our leaf.
      expect(curl(rig.alice, PINNED_SITE, { cacert: rig.origins.rootFile }).code).toBe(CURL_PEER_FAILED_VERIFICATION);
      ordinaryTrafficWorks();
    });

    test(`a client that refuses our certificate with unknown_ca alerts ${THRESHOLD} times is learned, counting only the alerts`, async () => {
      // The refusal above was the first alert; two more reach the threshold.
      for (let i = 1; i < THRESHOLD; i++) expect(curl(rig.alice, PINNED_SITE, { cacert: rig.origins.rootFile }).code).toBe(CURL_PEER_FAILED_VERIFICATION);
      const pinned = await waitForRecord(t.dataDir, 'alice', 'tls_pinned record', (r) => r.type === 'tls_pinned');
      expect(pinned).toMatchObject({ host: PINNED_SITE.host, failures: THRESHOLD, mode: 'learn', bypass: true });
      expect(records('tls_client_rejected').map((r) => [r.alert, r.failures])).toEqual([[ 'unknown_ca', 1], ['unknown_ca', 2], ['unknown_ca', 3]]);
    });

    test('the next connection is bypassed to the genuine origin: the client sees the origin\'s own certificate (same fingerprint)', async () => {
      const r = curl(rig.alice, PINNED_SITE, { cacert: rig.origins.rootFile, args: ['-w', '%{certs}'] });
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`hello from ${PINNED_SITE.host} over HTTP/1.1\n`)).toBe(true);
      expect(firstCertIn(r.stdout)?.fingerprint256).toBe(originLeafFingerprint(rig.origins, PINNED_SITE.host));
      const bypass = await waitForRecord(t.dataDir, 'alice', 'tls_bypass record', (x) => x.type === 'tls_bypass');
      expect(bypass).toMatchObject({ host: PINNED_SITE.host, reason: 'pinned-learned', verified: 'probe' });
      ordinaryTrafficWorks();
    });
  });

  describe('a learned name sent to another server is not relayed raw', () => {
    test.each([
      { server: 'a self-signed certificate', address: IMPOSTOR_SELF_SIGNED_V4, reason: 'self_signed' },
      { server: 'a valid certificate for another name', address: IMPOSTOR_OTHER_NAME_V4, reason: 'hostname_mismatch' },
    ])('toward a server with $server, the ClientHello is inspected and refused, and the log says why', async ({ address, reason }) => {
      const impostor = spoofed(PINNED_SITE, address);
      const r = curl(rig.alice, impostor, { cacert: rig.origins.rootFile });
      expect(r.code).toBe(CURL_SSL_CONNECT_ERROR);
      // Even a client that accepts anything gets no byte from the impostor.
      const insecure = curl(rig.alice, impostor, { cacert: null, args: ['--insecure'] });
      expect(insecure.code).toBe(CURL_SSL_CONNECT_ERROR);
      const refused = await waitForRecord(t.dataDir, 'alice', 'tls_bypass_refused record', (x) => x.type === 'tls_bypass_refused' && x.dst === `${address}:443`);
      expect(refused).toMatchObject({ host: PINNED_SITE.host, bypass: 'pinned-learned', reason });
      const rejected = await waitForRecord(t.dataDir, 'alice', 'tls_upstream_rejected record', (x) => x.type === 'tls_upstream_rejected' && x.reason === reason);
      expect(rejected).toMatchObject({ host: PINNED_SITE.host, outcome: 'block' });
      expect(records('flow_end').filter((x) => x.dst === `${address}:443` && x.mode === 'bypass')).toEqual([]);
      ordinaryTrafficWorks();
    });

    test('the genuine origin is still bypassed afterwards', () => {
      const r = curl(rig.alice, PINNED_SITE, { cacert: rig.origins.rootFile });
      expect(r.code).toBe(0);
    });
  });

  describe('non-TLS traffic on port 443 is blocked and logged', () => {
    test('plain HTTP is blocked and logged as non_tls with the guess "http", without the request', async () => {
      const r = rig.alice.ns.exec('curl', ['-sS', '--max-time', '10', `http://${PLAIN_HTTP_V4}:443${PLAIN_HTTP_PATH}?secret=hunter2`], { timeoutMs: 15_000 });
      expect(r.code).not.toBe(0);
      const rec = await waitForRecord(t.dataDir, 'alice', 'non_tls record', (x) => x.type === 'non_tls' && x.dst === `${PLAIN_HTTP_V4}:443`);
      expect(rec).toMatchObject({ guess: 'http', from: 'client', outcome: 'block' });
      expect(JSON.stringify(userRecords(t.dataDir, 'alice'))).not.toContain('hunter2');
      ordinaryTrafficWorks();
    });

    test('an SSH client speaking first is blocked and logged with the guess "ssh"', async () => {
      // Toward the HTTP server, which waits for the client: the client's bytes are what is guessed.
      const r = rawTcp(rig.alice, PLAIN_HTTP_V4, 443, 'SSH-2.0-OpenSSH_9.6\r\n', 5_000);
      expect(r.closed).toBe(true);
      expect(r.received).toBe('');
      const rec = await waitForRecord(t.dataDir, 'alice', 'non_tls ssh record', (x) => x.type === 'non_tls' && x.guess === 'ssh');
      expect(rec).toMatchObject({ dst: `${PLAIN_HTTP_V4}:443`, from: 'client', outcome: 'block' });
    });

    test('a server that speaks first while the client waits (SSH greeting) is recognised at once, blocked, and logged with from "server"', async () => {
      const before = records('non_tls').length;
      // Well inside the 10 s ClientHello deadline: the greeting itself ends the flow.
      const r = rawTcp(rig.alice, SSH_BANNER_V4, 443, null, 8_000);
      expect(r.closed).toBe(true);
      expect(r.received).not.toContain(SSH_GREETING.trim());
      await waitForRecord(t.dataDir, 'alice', 'second non_tls record', () => records('non_tls').length > before);
      expect(records('non_tls')[before]).toMatchObject({ dst: `${SSH_BANNER_V4}:443`, guess: 'ssh', from: 'server', outcome: 'block' });
      ordinaryTrafficWorks();
    });
  });
});
