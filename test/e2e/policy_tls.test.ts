// Issue 9, end to end through the tunnel with wireguard-go clients and lab
// TLS origins: the policy decides, per user and group and by the SNI, what
// is inspected, passed through untouched or refused, and traffic that
// cannot be decrypted is recognised instead of broken.
// - a host in an admin category reaches the client with the origin's own
//   certificate; an inspected host's certificate comes from the company CA;
// - a block by name refuses one group while another reaches the host;
// - a spoofed SNI naming a bypassed host, sent to another server, is not
//   bypassed;
// - QUIC (UDP 443) is refused with ICMP while TCP 443 works;
// - a server that demands a client certificate is learned and bypassed, so
//   that the employee's own certificate reaches it.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeE2E } from '../helpers/e2e';
import { ORIGIN_V4, Topology, type Client } from '../helpers/topology';
import { APP_SITE, GOOD_SITES, MTLS_HOST, setUpInspection, type InspectRig, type Site } from '../helpers/inspect_lab';
import { CURL_SSL_CONNECT_ERROR, curl, userRecords, waitForRecord, type UserRecord } from '../helpers/inspect_client';
import { IMPOSTOR_SELF_SIGNED_V4, bypassLabListeners, firstCertIn, originLeafFingerprint, spoofed } from '../helpers/bypass_lab';
import { icmpErrors, rawExchange } from '../helpers/raw_ip';
import { makeLeaf, makeRoot } from '../helpers/pki';
import { buildUdpPacket, IpAddress, IP_PROTOCOL_UDP } from '../../netstack/wire';

jest.setTimeout(180_000);
const TOOLS = ['ip', 'wireguard-go', 'wg', 'wg-quick', 'curl', 'openssl'];

/** A good lab site listed in the admin's own category file. */
const BANK: Site = GOOD_SITES.find((s) => s.host === 'p384.test') as Site;
const INSPECTED: Site = GOOD_SITES[0];
/** Serves mtls.test and accepts only clients with a certificate from the employees' own CA. */
const MTLS_V4 = '10.202.0.8';
const MTLS_SITE: Site = { name: 'mutual TLS', host: MTLS_HOST, address: MTLS_V4 };

describeE2E('policy through the tunnel: categories, groups, spoofed SNI, QUIC, mutual TLS', TOOLS, () => {
  const t = new Topology();
  let rig: InspectRig;
  let bob: Client;
  /** The employees' client certificate (their own PKI, trusted by the mTLS origin only). */
  let clientCert: { cert: string; key: string };
  const records = (user: string, type: string): UserRecord[] => userRecords(t.dataDir, user).filter((r) => r.type === type);

  beforeAll(async () => {
    const employeesCa = makeRoot({ cn: 'Employee Devices CA', o: 'Sightline Test' });
    const device = makeLeaf(employeesCa, { cn: 'alice-laptop', eku: ['clientAuth'] });
    clientCert = { cert: join(t.dataDir, 'alice-client.crt'), key: join(t.dataDir, 'alice-client.key') };
    writeFileSync(clientCert.cert, device.pem);
    writeFileSync(clientCert.key, device.keyPem, { mode: 0o600 });
    writeFileSync(join(t.dataDir, 'employees-ca.pem'), employeesCa.pem);
    writeFileSync(join(t.dataDir, 'banks.txt'), `# the admin's own list\n${BANK.host}\n`);
    const policy = [
      'groups:',
      '  staff: [alice]',
      '  finance: [bob]',
      'policy:',
      '  categories:',
      '    my-banks: banks.txt',
      '  rules:',
      `    - { id: app-not-for-staff, action: block, groups: [staff], hosts: [${APP_SITE.host}] }`,
      '    - { id: banks, action: bypass, categories: [my-banks] }',
      '    - { id: inspect-tls, action: inspect, protocol: tcp, ports: [443] }',
      '    - { id: allow-rest, action: allow }',
    ].join('\n');
    rig = await setUpInspection(t, [], (o) => {
      const lab = bypassLabListeners(o);
      const mtls = { address: MTLS_V4, port: 443, sites: { [MTLS_HOST]: o.config.https[0].sites[MTLS_HOST] }, clientCaFile: join(t.dataDir, 'employees-ca.pem') };
      return { ...lab, https: [...(lab.https ?? []), mtls] };
    }, policy);
    bob = await t.client('bob');
  });

  afterAll(async () => {
    await t.cleanup();
  });

  test('a host in an admin category reaches the client with the origin\'s own certificate (same fingerprint), logged with reason category', async () => {
    const r = curl(rig.alice, BANK, { cacert: rig.origins.rootFile, args: ['-w', '%{certs}'] });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`hello from ${BANK.host} over HTTP/1.1\n`)).toBe(true);
    expect(firstCertIn(r.stdout)?.fingerprint256).toBe(originLeafFingerprint(rig.origins, BANK.host));
    const bypass = await waitForRecord(t.dataDir, 'alice', 'tls_bypass', (x) => x.type === 'tls_bypass' && x.host === BANK.host);
    expect(bypass).toMatchObject({ reason: 'category', verified: 'probe', rule: 'banks', action: 'bypass' });
    const policy = await waitForRecord(t.dataDir, 'alice', 'policy record', (x) => x.type === 'policy' && x.host === BANK.host);
    expect(policy).toMatchObject({ rule: 'banks', action: 'bypass', reason: 'category', dst: BANK.address, dstPort: 443, proto: 'tcp', device: 'default' });
  });

  test('an inspected host\'s certificate is issued by the company CA, and its records carry the rule', async () => {
    const r = curl(rig.alice, INSPECTED, { cacert: rig.companyCa, args: ['-w', '%{certs}'] });
    expect(r.code).toBe(0);
    expect(firstCertIn(r.stdout)?.checkIssued(new X509Certificate(readFileSync(rig.companyCa)))).toBe(true);
    const end = await waitForRecord(t.dataDir, 'alice', 'flow_end', (x) => x.type === 'flow_end' && x.host === INSPECTED.host);
    expect(end).toMatchObject({ mode: 'inspect', rule: 'inspect-tls', action: 'inspect' });
    // The TCP flow's own record (the same client port as the inspected flow's).
    const clientPort = Number(String(end.client).split(':').pop());
    const flow = await waitForRecord(t.dataDir, 'alice', 'flow record', (x) => x.type === 'flow' && x.srcPort === clientPort);
    expect(flow).toMatchObject({ dst: INSPECTED.address, dstPort: 443, rule: 'inspect-tls', action: 'inspect' });
  });

  test('a block by name refuses the host for one group (TLS access_denied) while another group reaches it', async () => {
    const refused = curl(rig.alice, APP_SITE, { cacert: rig.companyCa });
    expect(refused.code).toBe(CURL_SSL_CONNECT_ERROR);
    expect(refused.stderr).toMatch(/access denied/i);
    const rec = await waitForRecord(t.dataDir, 'alice', 'policy block', (x) => x.type === 'policy' && x.host === APP_SITE.host);
    expect(rec).toMatchObject({ rule: 'app-not-for-staff', action: 'block', reason: 'policy-block' });
    // `policy explain` with the recorded user, destination and name says the same.
    const explained = t.sightline(['policy', 'explain', '--user', 'alice', '--dst', `${String(rec.dst)}:${String(rec.dstPort)}`, '--sni', String(rec.host), '--json']);
    expect(JSON.parse(explained.stdout)).toMatchObject({ rule: rec.rule, action: rec.action });
    const reached = curl(bob, APP_SITE, { cacert: rig.companyCa });
    expect(reached.code).toBe(0);
    expect(reached.stdout).toBe(`hello from ${APP_SITE.host} over HTTP/1.1\n`);
    expect(records('bob', 'policy').filter((x) => x.host === APP_SITE.host)).toEqual([]);
  });

  test('a spoofed SNI naming a bypassed host, sent to another server, is not bypassed: inspected, and refused for its bad certificate', async () => {
    const impostor = spoofed(BANK, IMPOSTOR_SELF_SIGNED_V4);
    expect(curl(rig.alice, impostor, { cacert: rig.origins.rootFile }).code).toBe(CURL_SSL_CONNECT_ERROR);
    expect(curl(rig.alice, impostor, { cacert: null, args: ['--insecure'] }).code).toBe(CURL_SSL_CONNECT_ERROR);
    const refused = await waitForRecord(t.dataDir, 'alice', 'tls_bypass_refused', (x) => x.type === 'tls_bypass_refused' && x.dst === `${IMPOSTOR_SELF_SIGNED_V4}:443`);
    expect(refused).toMatchObject({ host: BANK.host, bypass: 'category', reason: 'self_signed' });
    const end = await waitForRecord(t.dataDir, 'alice', 'flow_end', (x) => x.type === 'flow_end' && x.dst === `${IMPOSTOR_SELF_SIGNED_V4}:443`);
    expect(end).toMatchObject({ result: 'upstream_rejected', undecrypted: 'upstream-cert-error:self_signed' });
    expect(records('alice', 'flow_end').filter((x) => x.dst === `${IMPOSTOR_SELF_SIGNED_V4}:443` && x.mode === 'bypass')).toEqual([]);
  });

  test('QUIC to UDP 443 is refused with ICMP port unreachable, while TCP 443 works', () => {
    const quic = buildUdpPacket(IpAddress.parse(rig.alice.ipv4), 44_443, IpAddress.parse(ORIGIN_V4), 443, Buffer.from([0xc3, 0, 0, 0, 1, 8]));
    const errors = icmpErrors(rawExchange(rig.alice.ns, rig.alice.ifname, [quic], 2000));
    expect(errors).toEqual([expect.objectContaining({ type: 3, code: 3, aboutDst: ORIGIN_V4, aboutProtocol: IP_PROTOCOL_UDP })]);
    expect(curl(rig.alice, INSPECTED, { cacert: rig.companyCa }).code).toBe(0);
  });

  describe('a server that demands a client certificate (mutual TLS)', () => {
    const withCert = (): string[] => ['--cert', clientCert.cert, '--key', clientCert.key];

    test('the first connection fails (the concentrator has no certificate to present) and teaches the concentrator', async () => {
      const r = curl(rig.alice, MTLS_SITE, { cacert: rig.companyCa, args: withCert() });
      expect(r.code).not.toBe(0);
      const learned = await waitForRecord(t.dataDir, 'alice', 'tls_mtls_learned', (x) => x.type === 'tls_mtls_learned');
      expect(learned).toMatchObject({ host: MTLS_HOST, ttlSeconds: 43_200 });
    });

    test('the next connection is relayed undecrypted once the server proved its name: the employee\'s own certificate reaches it', async () => {
      const r = curl(rig.alice, MTLS_SITE, { cacert: rig.origins.rootFile, args: [...withCert(), '-w', '%{certs}'] });
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`hello from ${MTLS_HOST} over HTTP/1.1\n`)).toBe(true);
      expect(firstCertIn(r.stdout)?.fingerprint256).toBe(originLeafFingerprint(rig.origins, MTLS_HOST));
      const bypass = await waitForRecord(t.dataDir, 'alice', 'mtls bypass', (x) => x.type === 'tls_bypass' && x.host === MTLS_HOST);
      expect(bypass).toMatchObject({ reason: 'mtls', verified: 'probe' });
      const policy = await waitForRecord(t.dataDir, 'alice', 'policy record mtls', (x) => x.type === 'policy' && x.reason === 'mtls' && x.dst === MTLS_V4);
      expect(policy).toMatchObject({ host: MTLS_HOST, rule: 'inspect-tls' });
    });

    test('another employee is still inspected toward that server until their own flow meets the demand', () => {
      expect(curl(bob, MTLS_SITE, { cacert: rig.origins.rootFile, args: withCert() }).code).not.toBe(0);
    });
  });
});
