import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import forge from 'node-forge';
import { caPaths, initCa, loadCa } from '../../../mitm/ca';
import { exportCa } from '../../../mitm/ca_export';
import { opensslStatus, removeTempDirs, tempDir } from './ca_helpers';

afterAll(removeTempDirs);

function freshCa(): { dir: string; der: Buffer } {
  const dir = tempDir();
  initCa(dir);
  return { dir, der: loadCa(dir).x509.raw };
}

/** All SafeBags of a PFX, parsed back with forge (the MAC is verified by forge). */
function bagsOf(p12: Buffer, password: string): forge.pkcs12.Bag[] {
  const pfx = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(p12.toString('latin1')), true, password);
  return pfx.safeContents.flatMap((sc) => sc.safeBags);
}

describe('exportCa', () => {
  test('pem round-trips to the stored CA certificate', () => {
    const { dir, der } = freshCa();
    expect(new X509Certificate(exportCa(dir, 'pem')).raw.equals(der)).toBe(true);
  });

  test('der round-trips to the stored CA certificate', () => {
    const { dir, der } = freshCa();
    expect(exportCa(dir, 'der').equals(der)).toBe(true);
  });

  test('pem export never contains key material', () => {
    const { dir } = freshCa();
    expect(exportCa(dir, 'pem').toString()).not.toMatch(/PRIVATE KEY/);
  });

  test('p12 holds exactly the CA certificate and no key bag', () => {
    const { dir, der } = freshCa();
    const bags = bagsOf(exportCa(dir, 'p12', { p12Password: 'secret' }), 'secret');
    expect(bags).toHaveLength(1);
    expect(bags[0].type).toBe(forge.pki.oids.certBag);
    // forge only models RSA certificates; for an ECDSA CA it hands back the raw ASN.1.
    const bagDer = Buffer.from(forge.asn1.toDer(bags[0].asn1 as forge.asn1.Asn1).getBytes(), 'latin1');
    expect(bagDer.equals(der)).toBe(true);
    const keyBagTypes = [forge.pki.oids.keyBag, forge.pki.oids.pkcs8ShroudedKeyBag];
    expect(bags.some((b) => keyBagTypes.includes(b.type))).toBe(false);
  });

  test('p12 MAC is bound to the password', () => {
    const { dir } = freshCa();
    const p12 = exportCa(dir, 'p12', { p12Password: 'secret' });
    expect(() => bagsOf(p12, 'wrong')).toThrow(/MAC/);
  });

  test('openssl reads the p12 (SHA-256 MAC) and finds one certificate and no keys', () => {
    const { dir } = freshCa();
    const file = path.join(dir, 'ca.p12');
    fs.writeFileSync(file, exportCa(dir, 'p12', { p12Password: 'pw' }));
    const info = opensslStatus(['pkcs12', '-in', file, '-passin', 'pass:pw', '-info', '-nokeys'], dir);
    expect(info.ok).toBe(true);
    expect(info.output).toContain('MAC: sha256');
    expect(info.output.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    const keys = opensslStatus(['pkcs12', '-in', file, '-passin', 'pass:pw', '-nocerts', '-nodes'], dir);
    expect(keys.output).not.toMatch(/PRIVATE KEY/);
  });

  test('p12 with the legacy SHA-1 MAC and an empty password', () => {
    const { dir } = freshCa();
    const file = path.join(dir, 'legacy.p12');
    fs.writeFileSync(file, exportCa(dir, 'p12', { p12Mac: 'sha1' }));
    const info = opensslStatus(['pkcs12', '-in', file, '-passin', 'pass:', '-info', '-nokeys'], dir);
    expect(info.ok).toBe(true);
    expect(info.output).toContain('MAC: sha1');
  });

  test('never exports the untrusted CA', () => {
    const { dir } = freshCa();
    const untrustedDer = new X509Certificate(fs.readFileSync(caPaths(dir).untrustedCert)).raw;
    for (const format of ['pem', 'der', 'p12'] as const) {
      const out = exportCa(dir, format);
      expect(out.includes(untrustedDer)).toBe(false);
      expect(out.toString('latin1')).not.toContain('UNTRUSTED');
    }
  });
});
