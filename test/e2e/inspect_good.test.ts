// Issue 5, end to end through the tunnel: origins every browser opens load
// through TLS inspection, over HTTP/1.1 and HTTP/2, for an employee device
// (wireguard-go) that trusts only the company CA. The origins' certificates
// come from a test "public" root that only the concentrator trusts.
import { X509Certificate } from 'node:crypto';
import { describeE2E } from '../helpers/e2e';
import { Topology } from '../helpers/topology';
import { GOOD_SITES, setUpInspection, type InspectRig } from '../helpers/inspect_lab';
import { curl, userRecords } from '../helpers/inspect_client';
import { waitFor } from '../../scripts/lab/netns';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'openssl'];

describeE2E('TLS inspection through the tunnel: good origins load', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;

  beforeAll(async () => {
    rig = await setUpInspection(t);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  describe.each([
    { label: 'HTTP/1.1', http2: false, version: '1.1' },
    { label: 'HTTP/2', http2: true, version: '2' },
  ])('over $label', ({ http2, version }) => {
    // A success with --cacert = the company CA alone proves the client was
    // served a leaf minted by the company CA for this exact name.
    test.each(GOOD_SITES.map((s) => [s.name, s] as const))('%s: loads under a company-CA leaf', (_name, site) => {
      const r = curl(rig.alice, site, { cacert: rig.companyCa, http2, args: ['-w', '\n%{http_version} %{ssl_verify_result}'] });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`hello from ${site.host} over HTTP/${version === '2' ? '2.0' : '1.1'}\n\n${version} 0`);
    });
  });

  test('the leaf the client sees is issued by the company CA, not the origin\'s CA', () => {
    const r = curl(rig.alice, GOOD_SITES[0], { cacert: rig.companyCa, args: ['-o', '/dev/null', '-w', '%{certs}'] });
    expect(r.code).toBe(0);
    const exported = t.sightline(['ca', 'export']).stdout;
    const ca = new X509Certificate(exported);
    const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
    expect(leafPem).toBeDefined();
    const leaf = new X509Certificate(leafPem as string);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkHost(GOOD_SITES[0].host)).toBe(GOOD_SITES[0].host);
  });

  test('the missing intermediate is fetched from its caIssuers URL once and cached (RFC 5280 4.2.2.1)', async () => {
    // Both protocol runs above loaded aia.test; a browser-like cache fetches once.
    const fetches = (await rig.origin.requests()).filter((q) => q.listener === 'http' && q.path === rig.origins.aiaPath);
    expect(fetches).toHaveLength(1);
  });

  test('no good origin was refused or soft-failed revocation, and each request has an http record naming user, host, method, path and status', async () => {
    // Records are written asynchronously: wait until both requests per site are in.
    const records = await waitFor('http records for every good site', () => {
      const all = userRecords(t.dataDir, 'alice');
      return GOOD_SITES.every((s) => all.filter((r) => r.type === 'http' && r.host === s.host).length >= 2) ? all : undefined;
    }, 5000, 100);
    expect(records.filter((r) => r.type === 'tls_upstream_rejected')).toEqual([]);
    // p256.test's OCSP responder answered: the revocation check did not merely soft-fail open.
    expect(records.filter((r) => r.type === 'tls_revocation_soft_fail' && r.host === 'p256.test')).toEqual([]);
    for (const site of GOOD_SITES) {
      for (const r of records.filter((x) => x.type === 'http' && x.host === site.host)) {
        expect(r).toMatchObject({ user: 'alice', method: 'GET', path: '/', status: 200 });
      }
    }
  });
});
