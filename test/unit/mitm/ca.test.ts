import { X509Certificate, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaError, caFingerprint, caPaths, ensureCa, initCa, loadCa, loadUntrustedCa } from '../../../mitm/ca';
import { parseCertificate, subjectCommonName } from '../../../mitm/x509';
import { opensslStatus, removeTempDirs, tempDir } from './ca_helpers';

afterAll(removeTempDirs);

const spkiOf = (dir: string): string =>
  createPublicKey(loadCa(dir).key).export({ type: 'spki', format: 'der' }).toString('hex');

describe('initCa: a CA unique to the deployment', () => {
  // The attack: one CA shipped to every customer lets any customer impersonate
  // sites to every other customer's employees.
  test('two deployments get different keys, serials and subjects', () => {
    const a = tempDir();
    const b = tempDir();
    const infoA = initCa(a);
    const infoB = initCa(b);
    expect(spkiOf(a)).not.toBe(spkiOf(b));
    expect(infoA.serialNumber).not.toBe(infoB.serialNumber);
    expect(infoA.subject).not.toBe(infoB.subject);
    expect(infoA.fingerprint).not.toBe(infoB.fingerprint);
  });

  test('serial is 128 random bits, positive (RFC 5280 4.1.2.2, CA/B BR 7.1)', () => {
    const dir = tempDir();
    const { serialNumber } = initCa(dir);
    const serial = BigInt(`0x${serialNumber}`);
    expect(serial > 0n).toBe(true);
    expect(serial < 1n << 128n).toBe(true);
  });

  test('subject carries the random-suffixed CN and the configured O', () => {
    const dir = tempDir();
    const info = initCa(dir, { organization: 'Acme Corp' });
    expect(info.subject).toMatch(/^O=Acme Corp\nCN=Sightline Inspection CA [0-9a-f]{12}$/);
  });

  test('is a self-signed CA with critical basicConstraints pathlen:0 and keyCertSign+cRLSign (RFC 5280 4.2.1.9, 4.2.1.3)', () => {
    const dir = tempDir();
    initCa(dir);
    const ca = loadCa(dir);
    expect(ca.x509.ca).toBe(true);
    expect(ca.x509.verify(ca.x509.publicKey)).toBe(true);
    expect(ca.x509.checkIssued(ca.x509)).toBe(true);
    const text = opensslStatus(['x509', '-in', caPaths(dir).cert, '-noout', '-text'], dir).output;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Subject Key Identifier/);
    expect(ca.fields.subjectKeyId).toHaveLength(20);
  });

  test('openssl accepts the CA as a trust anchor', () => {
    const dir = tempDir();
    initCa(dir);
    const file = caPaths(dir).cert;
    expect(opensslStatus(['verify', '-CAfile', file, file], dir)).toEqual({ ok: true, output: `${file}: OK\n` });
  });

  test('validity is ten years by default and configurable', () => {
    const now = Date.UTC(2030, 0, 1);
    const a = tempDir();
    const b = tempDir();
    expect(initCa(a, { now }).notAfter.getTime()).toBe(now + 3650 * 86_400_000);
    expect(initCa(b, { now, validityDays: 365 }).notAfter.getTime()).toBe(now + 365 * 86_400_000);
  });

  test('ECDSA P-256 by default, RSA-3072 on request', () => {
    const a = tempDir();
    const b = tempDir();
    initCa(a);
    initCa(b, { keyType: 'rsa-3072' });
    expect(loadCa(a).key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const rsa = loadCa(b);
    expect(rsa.key.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(opensslStatus(['verify', '-CAfile', caPaths(b).cert, caPaths(b).cert], b).ok).toBe(true);
  });

  test('creates the untrusted CA alongside, clearly labelled and with a different key', () => {
    const dir = tempDir();
    initCa(dir);
    const untrusted = loadUntrustedCa(dir);
    expect(subjectCommonName(parseCertificate(untrusted.x509.raw))).toMatch(/^Sightline UNTRUSTED upstream \u2014 do not trust /);
    expect(untrusted.x509.ca).toBe(true);
    expect(untrusted.fingerprint).not.toBe(loadCa(dir).fingerprint);
  });
});

describe('CA storage', () => {
  test('directory is 0700 and private keys are 0600', () => {
    const dir = tempDir();
    initCa(dir);
    const p = caPaths(dir);
    expect(fs.statSync(p.dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(p.key).mode & 0o777).toBe(0o600);
    expect(fs.statSync(p.untrustedKey).mode & 0o777).toBe(0o600);
  });

  test('an existing, too-open CA directory is tightened to 0700', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'ca'), { mode: 0o755 });
    initCa(dir);
    expect(fs.statSync(caPaths(dir).dir).mode & 0o777).toBe(0o700);
  });

  test('refuses to overwrite an existing CA without force, naming the file and --force', () => {
    const dir = tempDir();
    const first = initCa(dir);
    expect(() => initCa(dir)).toThrow(CaError);
    expect(() => initCa(dir)).toThrow(new RegExp(`${caPaths(dir).cert.replace(/[.]/g, '\\.')}.*--force`));
    expect(loadCa(dir).fingerprint).toBe(first.fingerprint);
  });

  test('overwrites with force', () => {
    const dir = tempDir();
    const first = initCa(dir);
    const second = initCa(dir, { force: true });
    expect(second.fingerprint).not.toBe(first.fingerprint);
    expect(loadCa(dir).fingerprint).toBe(second.fingerprint);
  });

  test('a passphrase-protected key loads only with the passphrase', () => {
    const dir = tempDir();
    initCa(dir, { passphrase: 'correct horse' });
    const pem = fs.readFileSync(caPaths(dir).key, 'utf8');
    expect(pem).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(() => loadCa(dir)).toThrow(/ca\.key is encrypted with a passphrase; supply it/);
    expect(() => loadCa(dir, { passphrase: 'wrong' })).toThrow(/cannot decrypt .*ca\.key: wrong passphrase/);
    expect(loadCa(dir, { passphrase: 'correct horse' }).x509.ca).toBe(true);
  });

  test('the key is encrypted with AES-256-CBC (PBES2)', () => {
    const dir = tempDir();
    initCa(dir, { passphrase: 'pw' });
    const out = opensslStatus(['asn1parse', '-in', caPaths(dir).key], dir).output;
    expect(out).toContain('PBES2');
    expect(out).toContain('aes-256-cbc');
  });

  test('refuses to load a key readable by others (like ssh)', () => {
    const dir = tempDir();
    initCa(dir);
    fs.chmodSync(caPaths(dir).key, 0o644);
    expect(() => loadCa(dir)).toThrow(/mode 644.*chmod 600/);
  });

  test('refuses a key that does not belong to the certificate', () => {
    const dir = tempDir();
    const other = tempDir();
    initCa(dir);
    initCa(other);
    fs.copyFileSync(caPaths(other).key, caPaths(dir).key);
    expect(() => loadCa(dir)).toThrow(/private key does not match/);
  });

  test('loading a missing CA says to run init', () => {
    expect(() => loadCa(tempDir())).toThrow(/CA certificate not found at .*ca\.crt; run "sightline ca init"/);
  });
});

describe('ensureCa: first start', () => {
  test('creates the CA when missing and loads the same one afterwards', () => {
    const dir = tempDir();
    const first = ensureCa(dir);
    const again = ensureCa(dir);
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.ca.fingerprint).toBe(first.ca.fingerprint);
    expect(again.untrusted.fingerprint).toBe(first.untrusted.fingerprint);
  });

  test('recreates a missing untrusted CA without touching the company CA', () => {
    const dir = tempDir();
    const first = ensureCa(dir);
    fs.rmSync(caPaths(dir).untrustedKey);
    const again = ensureCa(dir);
    expect(again.ca.fingerprint).toBe(first.ca.fingerprint);
    expect(again.untrusted.fingerprint).not.toBe(first.untrusted.fingerprint);
  });

  test('a half-present CA is an error, never silently replaced', () => {
    const dir = tempDir();
    ensureCa(dir);
    fs.rmSync(caPaths(dir).key);
    expect(() => ensureCa(dir)).toThrow(/ca\.crt exists but .*ca\.key is missing/);
  });
});

test('caFingerprint is the colon-hex SHA-256 of the DER certificate', () => {
  const dir = tempDir();
  initCa(dir);
  const pem = fs.readFileSync(caPaths(dir).cert, 'utf8');
  const x509 = new X509Certificate(pem);
  const expected = opensslStatus(['x509', '-in', caPaths(dir).cert, '-noout', '-fingerprint', '-sha256'], dir)
    .output.trim().split('=')[1];
  expect(caFingerprint(x509)).toBe(expected);
  expect(caFingerprint(pem)).toBe(expected);
  expect(caFingerprint(x509.raw)).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
});
