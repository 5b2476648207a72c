// Upstream validation failures never give the client a certificate it
// trusts (issue 5): in 'block' mode the client gets a fatal TLS alert; in
// 'untrusted-ca' mode it gets a leaf from the untrusted CA, so its own
// certificate warning appears. Either way a tls_upstream_rejected record
// names the precise reason. These are the failures real products hid.

import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import { OnUpstreamError } from '../../../mitm/engine';
import { daysFromNow, issueCert, makeIntermediate, makeLeaf, makeRoot } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { EngineUnderTest, Pki, handshake, makePki, originCert, withEngine } from './engine_harness';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

interface BadOrigin {
  name: string;
  reason: string;
  servername: string;
  /** The name the minted leaf carries: the upstream's own names when there are any to mirror. */
  leafName: string;
  /** Key and certificate chain the origin serves. */
  make: () => { key: string; cert: string };
}

const BAD_ORIGINS: BadOrigin[] = [
  {
    name: 'an expired leaf',
    reason: 'expired',
    servername: 'expired.test',
    leafName: 'expired.test',
    make: () => originCert(pki, 'expired.test', { notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) }),
  },
  {
    name: 'a self-signed leaf',
    reason: 'self_signed',
    servername: 'self.test',
    leafName: 'self.test',
    make: () => {
      const leaf = issueCert({ cn: 'self.test', dns: ['self.test'], key: 'p256' });
      return { key: leaf.keyPem, cert: leaf.pem };
    },
  },
  {
    name: 'a leaf for another host',
    reason: 'hostname_mismatch',
    servername: 'asked-for.test',
    leafName: 'someone-else.test',
    make: () => originCert(pki, 'someone-else.test', { ips: [] }),
  },
  {
    name: 'a chain to a root the concentrator does not trust',
    reason: 'untrusted_root',
    servername: 'rogue.test',
    leafName: 'rogue.test',
    make: () => {
      const root = makeRoot({ cn: 'Rogue Root' });
      const intermediate = makeIntermediate(root, { cn: 'Rogue Intermediate' });
      const leaf = makeLeaf(intermediate, { dns: ['rogue.test'] });
      return { key: leaf.keyPem, cert: leaf.pem + intermediate.pem + root.pem };
    },
  },
];

function withOrigin<T>(bad: BadOrigin, mode: OnUpstreamError, run: (eut: EngineUnderTest) => Promise<T>): Promise<T> {
  const origin = https.createServer(bad.make(), (_req, res) => res.end('origin body'));
  return withEngine(pki, origin, run, { tls: { onUpstreamError: mode, revocation: 'off' } });
}

describe.each(BAD_ORIGINS)('upstream with $name', (bad) => {
  test(`block mode: the client gets a handshake_failure alert and the record says ${bad.reason}`, async () => {
    await withOrigin(bad, 'block', async (eut) => {
      const r = await handshake(eut.port, { servername: bad.servername, ca: [pki.ca.certPem] });
      expect(r).toEqual({ ok: false, code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ result: 'upstream_rejected', reason: bad.reason });
      const [rejected] = eut.records.ofType('tls_upstream_rejected');
      expect(rejected).toMatchObject({ reason: bad.reason, host: bad.servername, outcome: 'block', user: 'alice' });
      expect(String(rejected.detail).length).toBeGreaterThan(0);
    });
  });

  test('untrusted-ca mode: a client trusting the company CA fails with a certificate error', async () => {
    await withOrigin(bad, 'untrusted-ca', async (eut) => {
      const r = await handshake(eut.port, { servername: bad.servername, ca: [pki.ca.certPem] });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
      await eut.ended(1);
      expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: bad.reason, outcome: 'untrusted-ca' });
      // Our certificate being refused is expected here, not a sign of pinning.
      expect(eut.records.ofType('tls_client_rejected')).toHaveLength(0);
    });
  });

  test('untrusted-ca mode: the leaf shown is issued by the untrusted CA, never by the company CA', async () => {
    await withOrigin(bad, 'untrusted-ca', async (eut) => {
      // Name checks off: a mismatched upstream is mirrored as it is, so the browser shows that too.
      const r = await handshake(eut.port, { servername: bad.servername, ca: [pki.untrusted.certPem], checkServerIdentity: () => undefined });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const leaf = new X509Certificate(r.peer.raw);
      r.socket.destroy();
      expect(leaf.checkIssued(pki.untrusted.x509)).toBe(true);
      expect(leaf.checkIssued(pki.ca.x509)).toBe(false);
      expect(leaf.subjectAltName).toContain(`DNS:${bad.leafName}`);
    });
  });
});

test('untrusted-ca mode: a user who accepts the warning reaches the origin (the browser decided, not us)', async () => {
  await withOrigin(BAD_ORIGINS[0], 'untrusted-ca', async (eut) => {
    const r = await handshake(eut.port, { servername: 'expired.test', ca: [pki.untrusted.certPem] });
    if (!r.ok) throw new Error(r.code);
    r.socket.end('GET / HTTP/1.1\r\nHost: expired.test\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    for await (const c of r.socket) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toMatch(/origin body$/);
    const [end] = await eut.ended(1);
    expect(end).toMatchObject({ mode: 'inspect', issuer: 'untrusted' });
  });
});

test('an upstream that is not TLS at all is refused with an internal_error alert in either mode', async () => {
  const net = await import('node:net');
  // A plain HTTP server on the port: it reads the ClientHello as a bad request and answers 400.
  const origin = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
  await withEngine(pki, origin, async (eut) => {
    const r = await handshake(eut.port, { servername: 'plain.test', ca: [pki.untrusted.certPem] });
    expect(r).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR' });
    await eut.ended(1);
    expect(eut.records.ofType('tls_upstream_rejected')[0]).toMatchObject({ reason: 'tls_handshake_failed', outcome: 'block' });
  }, { tls: { onUpstreamError: 'untrusted-ca', revocation: 'off' } });
});
