import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaError, caPaths, importCa, initCa, loadCa, loadUntrustedCa } from '../../../mitm/ca';
import { LeafMinter } from '../../../mitm/mint';
import { EnterprisePki, makeEnterprisePki, opensslStatus, removeTempDirs, tempDir } from './ca_helpers';

let pki: EnterprisePki;
beforeAll(() => {
  pki = makeEnterprisePki();
});
afterAll(removeTempDirs);

describe('importCa: an existing enterprise intermediate', () => {
  test('installs the intermediate and creates the untrusted CA beside it', () => {
    const dir = tempDir();
    const info = importCa(dir, { certPem: pki.intCrtPem, keyPem: pki.intKeyPem });
    expect(info.subject).toBe('O=Acme\nCN=Acme Inspection Intermediate');
    const ca = loadCa(dir);
    expect(ca.selfSigned).toBe(false);
    expect(loadUntrustedCa(dir).x509.ca).toBe(true);
    expect(fs.statSync(caPaths(dir).key).mode & 0o777).toBe(0o600);
  });

  test('leaves minted from it chain to the enterprise root', () => {
    const dir = tempDir();
    importCa(dir, { certPem: pki.intCrtPem, keyPem: pki.intKeyPem });
    const leaf = new LeafMinter(loadCa(dir)).mint({ sans: [{ type: 'dns', value: 'intranet.acme.test' }] }, { now: Date.now() });
    const leafFile = path.join(dir, 'leaf.pem');
    fs.writeFileSync(leafFile, leaf.certPem);
    const intFile = path.join(dir, 'int.pem');
    fs.writeFileSync(intFile, pki.intCrtPem);
    expect(opensslStatus(['verify', '-CAfile', pki.rootCrt, '-untrusted', intFile, leafFile], dir).ok).toBe(true);
    // The server must send the intermediate: it is part of the chain the minter hands out.
    expect(leaf.chainPem).toBe(leaf.certPem + loadCa(dir).certPem);
  });

  test('keeps certificates above the intermediate as chain', () => {
    const dir = tempDir();
    const rootPem = fs.readFileSync(pki.rootCrt, 'utf8');
    importCa(dir, { certPem: pki.intCrtPem + rootPem, keyPem: pki.intKeyPem });
    const ca = loadCa(dir);
    expect(ca.x509.subject).toContain('Acme Inspection Intermediate');
    expect(ca.chainPem).toHaveLength(1);
  });

  test('encrypts the stored key when a passphrase is given', () => {
    const dir = tempDir();
    importCa(dir, { certPem: pki.intCrtPem, keyPem: pki.intKeyPem, passphrase: 'pw' });
    expect(() => loadCa(dir)).toThrow(/encrypted/);
    expect(loadCa(dir, { passphrase: 'pw' }).x509.subject).toContain('Intermediate');
  });

  test('rejects an end-entity certificate (basicConstraints CA:FALSE)', () => {
    expect(() => importCa(tempDir(), { certPem: pki.leafCrtPem, keyPem: pki.leafKeyPem }))
      .toThrow(/not a CA certificate/);
  });

  test('rejects a CA certificate without keyUsage keyCertSign (RFC 5280 4.2.1.3)', () => {
    expect(() => importCa(tempDir(), { certPem: pki.noSignCrtPem, keyPem: pki.noSignKeyPem }))
      .toThrow(/lacks keyUsage keyCertSign/);
  });

  test('rejects a key that does not match the certificate', () => {
    expect(() => importCa(tempDir(), { certPem: pki.intCrtPem, keyPem: pki.leafKeyPem }))
      .toThrow(/private key does not match/);
  });

  test('rejects an expired CA', () => {
    const farFuture = Date.UTC(2200, 0, 1);
    expect(() => importCa(tempDir(), { certPem: pki.intCrtPem, keyPem: pki.intKeyPem, now: farFuture }))
      .toThrow(/expired on/);
  });

  test('rejects input without a certificate', () => {
    expect(() => importCa(tempDir(), { certPem: 'nothing here', keyPem: pki.intKeyPem })).toThrow(CaError);
  });

  test('refuses to replace an existing CA without force, and replaces it with force', () => {
    const dir = tempDir();
    initCa(dir);
    expect(() => importCa(dir, { certPem: pki.intCrtPem, keyPem: pki.intKeyPem })).toThrow(/--force/);
    importCa(dir, { certPem: pki.intCrtPem, keyPem: pki.intKeyPem, force: true });
    expect(loadCa(dir).x509.subject).toContain('Intermediate');
  });
});
