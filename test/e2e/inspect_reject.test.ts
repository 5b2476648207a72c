// Issue 5, end to end through the tunnel: an upstream that fails strict
// validation never reaches the employee under a certificate it trusts, in
// both tls.onUpstreamError modes, and the user's log names the precise
// reason. This is the failure real interception products shipped: bad
// upstream certificates accepted and re-signed, hiding the problem.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { Topology } from '../helpers/topology';
import { BAD_SITES, setUpInspection, type BadSite, type InspectRig } from '../helpers/inspect_lab';
import { CURL_PEER_FAILED_VERIFICATION, CURL_SSL_CONNECT_ERROR, curl, waitForRecord } from '../helpers/inspect_client';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'openssl'];
const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const cases = (sites: readonly BadSite[]): Array<[string, BadSite]> => sites.map((s) => [s.name, s]);

/** The rejection record for `site`, with the reason and what the concentrator did. */
async function rejection(t: Topology, site: BadSite): Promise<Record<string, unknown>> {
  return waitForRecord(t.dataDir, 'alice', `tls_upstream_rejected for ${site.host}`, (r) => r.type === 'tls_upstream_rejected' && r.host === site.host);
}

describeE2E('TLS inspection through the tunnel: bad upstreams, tls.onUpstreamError = block', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;

  beforeAll(async () => {
    rig = await setUpInspection(t, ['onUpstreamError: block']);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  // The client gets a TLS alert instead of a certificate: curl reports a
  // handshake failure (35), not a verification failure (60).
  test.each(cases(BAD_SITES))('%s: the client gets a TLS alert and the log names the reason', async (_name, site) => {
    const r = curl(rig.alice, site, { cacert: rig.companyCa });
    expect(r.code).toBe(CURL_SSL_CONNECT_ERROR);
    expect(r.stderr).toMatch(/alert/i);
    expect(await rejection(t, site)).toMatchObject({ user: 'alice', reason: site.reason, outcome: 'block' });
  });

  test('no refused upstream ever got an http record (nothing was relayed)', () => {
    const relayed = readFileSync(join(t.dataDir, 'logs', 'alice.ndjson'), 'utf8')
      .split('\n').filter((l) => l.includes('"type":"http"'));
    expect(relayed).toEqual([]);
  });
});

describeE2E('TLS inspection through the tunnel: bad upstreams, tls.onUpstreamError = untrusted-ca', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;
  let untrustedCa: X509Certificate;
  let companyCa: X509Certificate;

  beforeAll(async () => {
    rig = await setUpInspection(t, ['onUpstreamError: untrusted-ca']);
    untrustedCa = new X509Certificate(readFileSync(join(t.dataDir, 'ca', 'untrusted.crt')));
    companyCa = new X509Certificate(readFileSync(rig.companyCa));
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('the untrusted CA is a different CA from the one employees trust', () => {
    expect(untrustedCa.fingerprint256).not.toBe(companyCa.fingerprint256);
    expect(untrustedCa.publicKey.export({ type: 'spki', format: 'der' })).not.toEqual(companyCa.publicKey.export({ type: 'spki', format: 'der' }));
  });

  // With an upstream session the client is shown a certificate it cannot
  // verify (curl 60), so the browser's own warning appears; a TLS 1.0 server
  // gives no session to mirror, so that one is refused with an alert (35).
  test.each(cases(BAD_SITES))('%s: the client cannot verify what it is shown and the log names the reason', async (_name, site) => {
    const r = curl(rig.alice, site, { cacert: rig.companyCa });
    expect(r.code).toBe(site.upstreamSession ? CURL_PEER_FAILED_VERIFICATION : CURL_SSL_CONNECT_ERROR);
    const outcome = site.upstreamSession ? 'untrusted-ca' : 'block';
    expect(await rejection(t, site)).toMatchObject({ user: 'alice', reason: site.reason, outcome });
  });

  test.each(cases(BAD_SITES.filter((s) => s.upstreamSession)))('%s: a client overriding the warning sees a leaf from the untrusted CA, never the company CA', (_name, site) => {
    const r = curl(rig.alice, site, { cacert: rig.companyCa, args: ['--insecure', '-w', '%{certs}'] });
    expect(r.code).toBe(0);
    const leafPem = PEM_RE.exec(r.stdout)?.[0];
    expect(leafPem).toBeDefined();
    const leaf = new X509Certificate(leafPem as string);
    expect(leaf.checkIssued(untrustedCa)).toBe(true);
    expect(leaf.verify(untrustedCa.publicKey)).toBe(true);
    expect(leaf.verify(companyCa.publicKey)).toBe(false);
    // Past the warning, the page itself is relayed, as a browser's "proceed anyway" expects.
    expect(r.stdout.startsWith(`hello from ${site.host} over HTTP/1.1\n`)).toBe(true);
  });
});
