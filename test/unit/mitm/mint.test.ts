import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoadedCa, ensureCa } from '../../../mitm/ca';
import { parseCertificate } from '../../../mitm/x509';
import { LeafMinter, MintError, UpstreamNames } from '../../../mitm/mint';
import { opensslStatus, removeTempDirs, tempDir } from './ca_helpers';

const NOW = Date.now();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let dir: string;
let ca: LoadedCa;
let untrusted: LoadedCa;
beforeAll(() => {
  dir = tempDir();
  ({ ca, untrusted } = ensureCa(dir));
});
afterAll(removeTempDirs);

const upstream: UpstreamNames = {
  subjectCN: 'www.example.com',
  sans: [
    { type: 'dns', value: 'www.example.com' },
    { type: 'dns', value: 'example.com' },
    { type: 'dns', value: '*.cdn.example.com' },
    { type: 'ip', value: '192.0.2.7' },
    { type: 'ip', value: '2001:db8::7' },
  ],
  notAfter: new Date(NOW + 90 * DAY),
};

function opensslVerify(caPem: string, leafPem: string): { ok: boolean; output: string } {
  const caFile = path.join(dir, `ca-${Math.random().toString(16).slice(2)}.pem`);
  const leafFile = `${caFile}.leaf`;
  fs.writeFileSync(caFile, caPem);
  fs.writeFileSync(leafFile, leafPem);
  return opensslStatus(['verify', '-purpose', 'sslserver', '-CAfile', caFile, leafFile], dir);
}

describe('a minted leaf', () => {
  test('is issued by the CA: node:crypto verify and checkIssued', () => {
    const leaf = new X509Certificate(new LeafMinter(ca).mint(upstream, { now: NOW }).certPem);
    expect(leaf.checkIssued(ca.x509)).toBe(true);
    expect(leaf.verify(ca.x509.publicKey)).toBe(true);
  });

  test('passes openssl verify -CAfile with purpose sslserver', () => {
    const leaf = new LeafMinter(ca).mint(upstream, { now: NOW });
    expect(opensslVerify(ca.certPem, leaf.certPem).ok).toBe(true);
  });

  test('mirrors the upstream DNS and IP SANs and CN', () => {
    const leaf = new X509Certificate(new LeafMinter(ca).mint(upstream, { now: NOW }).certPem);
    expect(leaf.subject).toBe('CN=www.example.com');
    const names = (leaf.subjectAltName ?? '').split(', ').sort();
    expect(names).toEqual([
      'DNS:*.cdn.example.com', 'DNS:example.com', 'DNS:www.example.com',
      'IP Address:192.0.2.7', 'IP Address:2001:DB8:0:0:0:0:0:7',
    ].sort());
    expect(leaf.checkHost('www.example.com')).toBe('www.example.com');
    expect(leaf.checkHost('img.cdn.example.com')).toBe('*.cdn.example.com');
    expect(leaf.checkIP('2001:db8::7')).toBe('2001:db8::7');
    expect(leaf.checkHost('evil.test')).toBeUndefined();
  });

  test('is an end entity for TLS servers only: CA:FALSE, EKU serverAuth, digitalSignature', () => {
    const leafPem = new LeafMinter(ca).mint(upstream, { now: NOW }).certPem;
    const leaf = new X509Certificate(leafPem);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    const f = parseCertificate(leaf.raw);
    expect(f.basicConstraints).toEqual({ ca: false });
    expect([...(f.keyUsage ?? [])]).toEqual([0]);
  });

  test('an RSA leaf key also gets keyEncipherment (TLS 1.2 RSA key transport)', () => {
    const leaf = new LeafMinter(ca, { keyType: 'rsa-2048' }).mint(upstream, { now: NOW });
    expect(leaf.key.asymmetricKeyType).toBe('rsa');
    expect([...(parseCertificate(leaf.certDer).keyUsage ?? [])].sort()).toEqual([0, 2]);
    expect(opensslVerify(ca.certPem, leaf.certPem).ok).toBe(true);
  });

  test('an RSA-3072 CA signs with sha256WithRSAEncryption and the leaf verifies', () => {
    const { ca: rsaCa } = ensureCa(tempDir(), { keyType: 'rsa-3072' });
    const leaf = new LeafMinter(rsaCa).mint(upstream, { now: NOW });
    expect(new X509Certificate(leaf.certPem).verify(rsaCa.x509.publicKey)).toBe(true);
    expect(opensslVerify(rsaCa.certPem, leaf.certPem).ok).toBe(true);
  });

  test('authorityKeyIdentifier equals the CA subjectKeyIdentifier (RFC 5280 4.2.1.1)', () => {
    const leafFile = path.join(dir, 'aki.pem');
    fs.writeFileSync(leafFile, new LeafMinter(ca).mint(upstream, { now: NOW }).certPem);
    const out = opensslStatus(['x509', '-in', leafFile, '-noout', '-ext', 'authorityKeyIdentifier'], dir).output;
    const ski = (ca.fields.subjectKeyId as Buffer).toString('hex').toUpperCase().match(/../g)?.join(':');
    expect(out).toContain(ski);
  });

  test('serials are random and distinct per mint', () => {
    const minter = new LeafMinter(ca);
    const a = new X509Certificate(minter.mint({ sans: [{ type: 'dns', value: 'a.test' }] }, { now: NOW }).certPem);
    const b = new X509Certificate(minter.mint({ sans: [{ type: 'dns', value: 'b.test' }] }, { now: NOW }).certPem);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.serialNumber.length).toBeGreaterThanOrEqual(30);
  });

  test('one leaf key pair is reused across hosts', () => {
    const minter = new LeafMinter(ca);
    const a = minter.mint({ sans: [{ type: 'dns', value: 'a.test' }] }, { now: NOW });
    const b = minter.mint({ sans: [{ type: 'dns', value: 'b.test' }] }, { now: NOW });
    expect(a.key).toBe(b.key);
    expect(a.keyPem).toBe(b.keyPem);
  });

  test('can be minted from the upstream certificate itself', () => {
    const original = new LeafMinter(ca).mint(upstream, { now: NOW });
    const copy = new X509Certificate(new LeafMinter(ca).mint(new X509Certificate(original.certDer), { now: NOW }).certPem);
    expect(copy.subjectAltName).toBe(new X509Certificate(original.certPem).subjectAltName);
    expect(copy.subject).toBe('CN=www.example.com');
  });
});

describe('leaf validity', () => {
  const validFrom = (pem: string) => new Date(new X509Certificate(pem).validFrom).getTime();
  const validTo = (pem: string) => new Date(new X509Certificate(pem).validTo).getTime();

  test('is short (7 days by default) and starts an hour early for clock skew', () => {
    const pem = new LeafMinter(ca).mint(upstream, { now: NOW }).certPem;
    expect(validTo(pem)).toBe(Math.floor((NOW + 7 * DAY) / 1000) * 1000);
    expect(validFrom(pem)).toBe(Math.floor((NOW - HOUR) / 1000) * 1000);
  });

  test('never outlasts the upstream certificate', () => {
    const soon = new Date(NOW + 2 * DAY);
    const pem = new LeafMinter(ca).mint({ ...upstream, notAfter: soon }, { now: NOW }).certPem;
    expect(validTo(pem)).toBeLessThanOrEqual(soon.getTime());
  });

  test('never outlasts the CA', () => {
    const caEnd = ca.fields.notAfter.getTime();
    const pem = new LeafMinter(ca, { validityMs: 100 * 365 * DAY }).mint({ sans: upstream.sans }, { now: NOW }).certPem;
    expect(validTo(pem)).toBeLessThanOrEqual(caEnd);
  });

  test('an expired upstream certificate is refused, not papered over', () => {
    expect(() => new LeafMinter(ca).mint({ ...upstream, notAfter: new Date(NOW - 1000) }, { now: NOW }))
      .toThrow(/upstream certificate expired/);
  });
});

describe('names', () => {
  test('a CN too long for ub-common-name gives an empty subject and a critical SAN (RFC 5280 4.2.1.6)', () => {
    const long = `${'a'.repeat(60)}.example.com`;
    const leaf = new LeafMinter(ca).mint({ subjectCN: long, sans: [{ type: 'dns', value: long }] }, { now: NOW });
    const text = opensslStatus(['x509', '-inform', 'DER', '-noout', '-text', '-in', writeTmp(leaf.certDer)], dir).output;
    expect(new X509Certificate(leaf.certPem).subject ?? '').toBe('');
    expect(text).toMatch(/Subject Alternative Name: critical/);
    expect(opensslVerify(ca.certPem, leaf.certPem).ok).toBe(true);
  });

  test('the SNI fills an absent CN only when the SANs cover it', () => {
    const minter = new LeafMinter(ca);
    const sans = [{ type: 'dns' as const, value: '*.example.org' }];
    expect(new X509Certificate(minter.mint({ sans }, { sni: 'app.example.org', now: NOW }).certPem).subject).toBe('CN=app.example.org');
    const other = new LeafMinter(ca);
    expect(new X509Certificate(other.mint({ sans }, { sni: 'evil.test', now: NOW }).certPem).subject).toBe('CN=*.example.org');
  });

  test('the SNI never adds a name the upstream does not have', () => {
    const leaf = new X509Certificate(new LeafMinter(ca).mint({ sans: [{ type: 'dns', value: 'a.test' }] }, { sni: 'b.test', now: NOW }).certPem);
    expect(leaf.subjectAltName).toBe('DNS:a.test');
  });

  test('a CN-only legacy upstream gets its CN as the SAN', () => {
    const leaf = new X509Certificate(new LeafMinter(ca).mint({ subjectCN: 'legacy.test', sans: [] }, { now: NOW }).certPem);
    expect(leaf.subjectAltName).toBe('DNS:legacy.test');
  });

  test.each([['*.com'], ['bad name.test'], ['a..test'], ['*']])('refuses the invalid or overly broad name %s', (name) => {
    expect(() => new LeafMinter(ca).mint({ sans: [{ type: 'dns', value: name }] }, { now: NOW })).toThrow(MintError);
  });

  test('refuses an upstream with no names at all', () => {
    expect(() => new LeafMinter(ca).mint({ sans: [] }, { now: NOW })).toThrow(/names no DNS name or IP address/);
  });
});

describe('cache', () => {
  test('a second mint for the same names is a hit returning the same certificate', () => {
    const minter = new LeafMinter(ca);
    const first = minter.mint(upstream, { now: NOW });
    const reordered = { ...upstream, sans: [...upstream.sans].reverse().map((s) => ({ ...s, value: s.value.toUpperCase() })) };
    expect(minter.mint(reordered, { now: NOW + 1000 })).toBe(first);
    expect(minter.stats).toMatchObject({ hits: 1, misses: 1, size: 1 });
  });

  test('different name sets are different entries', () => {
    const minter = new LeafMinter(ca);
    const a = minter.mint({ sans: [{ type: 'dns', value: 'a.test' }] }, { now: NOW });
    const b = minter.mint({ sans: [{ type: 'dns', value: 'a.test' }, { type: 'dns', value: 'b.test' }] }, { now: NOW });
    expect(b).not.toBe(a);
    expect(minter.stats.misses).toBe(2);
  });

  test('is bounded: the least recently used entry is evicted', () => {
    const minter = new LeafMinter(ca, { cacheSize: 2 });
    const host = (h: string) => ({ sans: [{ type: 'dns' as const, value: h }] });
    const a = minter.mint(host('a.test'), { now: NOW });
    minter.mint(host('b.test'), { now: NOW });
    expect(minter.mint(host('a.test'), { now: NOW })).toBe(a); // a is now most recent
    minter.mint(host('c.test'), { now: NOW }); // evicts b
    expect(minter.stats).toMatchObject({ size: 2, evictions: 1 });
    expect(minter.mint(host('a.test'), { now: NOW })).toBe(a);
    const missesBefore = minter.stats.misses;
    minter.mint(host('b.test'), { now: NOW });
    expect(minter.stats.misses).toBe(missesBefore + 1);
  });

  test('a leaf close to expiry is minted again', () => {
    const minter = new LeafMinter(ca, { validityMs: 2 * HOUR });
    const first = minter.mint(upstream, { now: NOW });
    expect(minter.mint(upstream, { now: NOW + 90 * 60_000 })).not.toBe(first);
  });

  test('a cached leaf is not served past an upstream notAfter that is earlier than its own', () => {
    const minter = new LeafMinter(ca);
    const first = minter.mint(upstream, { now: NOW });
    const second = minter.mint({ ...upstream, notAfter: new Date(NOW + DAY) }, { now: NOW });
    expect(second).not.toBe(first);
    expect(second.notAfter.getTime()).toBeLessThanOrEqual(NOW + DAY);
  });
});

describe('the untrusted CA', () => {
  test('mints leaves that verify against it and not against the company CA', () => {
    const leaf = new LeafMinter(untrusted).mint(upstream, { now: NOW });
    const x = new X509Certificate(leaf.certPem);
    expect(x.verify(untrusted.x509.publicKey)).toBe(true);
    expect(x.verify(ca.x509.publicKey)).toBe(false);
    expect(opensslVerify(ca.certPem, leaf.certPem).ok).toBe(false);
  });
});

function writeTmp(data: Buffer): string {
  const file = path.join(dir, `tmp-${Math.random().toString(16).slice(2)}.der`);
  fs.writeFileSync(file, data);
  return file;
}
