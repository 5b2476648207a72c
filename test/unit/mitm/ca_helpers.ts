// Shared fixtures for the CA and minting tests: temporary data directories and
// an "enterprise" root + intermediate made by the openssl CLI, so imported
// certificates do not come from our own builder.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const made: string[] = [];

export function tempDir(prefix = 'sightline-ca-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs openssl and returns exit status plus stdout followed by stderr, without throwing. */
export function opensslStatus(args: string[], cwd: string): { ok: boolean; output: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface EnterprisePki {
  dir: string;
  rootCrt: string;
  intCrtPem: string;
  intKeyPem: string;
  leafCrtPem: string;
  leafKeyPem: string;
  noSignCrtPem: string;
  noSignKeyPem: string;
}

/**
 * root (CA) -> intermediate (CA, pathlen:0, keyCertSign), plus two certificates
 * that must not be importable: a server leaf (CA:FALSE) and a CA without keyCertSign.
 */
export function makeEnterprisePki(): EnterprisePki {
  const dir = tempDir('sightline-pki-');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.crt', '-subj', '/O=Acme/CN=Acme Root', '-days', '30',
    '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  fs.writeFileSync(path.join(dir, 'int.ext'),
    'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  fs.writeFileSync(path.join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nsubjectAltName=DNS:leaf.acme.test\n');
  fs.writeFileSync(path.join(dir, 'nosign.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,digitalSignature\n');
  for (const [name, cn] of [['int', 'Acme Inspection Intermediate'], ['leaf', 'leaf.acme.test'], ['nosign', 'Acme No Sign']]) {
    openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=Acme/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '20', '-extfile', `${name}.ext`], dir);
  }
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    rootCrt: path.join(dir, 'root.crt'),
    intCrtPem: read('int.crt'),
    intKeyPem: read('int.key'),
    leafCrtPem: read('leaf.crt'),
    leafKeyPem: read('leaf.key'),
    noSignCrtPem: read('nosign.crt'),
    noSignKeyPem: read('nosign.key'),
  };
}
