// On-disk layout of the company CA. The private key is the most sensitive
// secret of a TLS-inspection deployment: whoever holds it can impersonate any
// site to every employee. So: directory 0700, key 0600 (checked again on load,
// like ssh does for its keys), atomic writes, optional passphrase encryption.

import { KeyObject, createPrivateKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class CaError extends Error {}

export interface CaPaths {
  dir: string;
  cert: string;
  key: string;
  untrustedCert: string;
  untrustedKey: string;
}

export const DIR_MODE = 0o700;
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

/** PBES2 (RFC 8018) with AES-256-CBC; OpenSSL derives the key with PBKDF2-HMAC-SHA256. */
const KEY_CIPHER = 'aes-256-cbc';

export function caPaths(dataDir: string): CaPaths {
  const dir = path.join(dataDir, 'ca');
  return {
    dir,
    cert: path.join(dir, 'ca.crt'),
    key: path.join(dir, 'ca.key'),
    untrustedCert: path.join(dir, 'untrusted.crt'),
    untrustedKey: path.join(dir, 'untrusted.key'),
  };
}

/** Creates the directory, and tightens it if it already existed with a looser mode. */
export function prepareCaDir(paths: CaPaths): void {
  fs.mkdirSync(paths.dir, { recursive: true, mode: DIR_MODE });
  fs.chmodSync(paths.dir, DIR_MODE);
}

/**
 * Writes through a temporary file created with the final mode and renamed into
 * place, so a crash never leaves a half-written key and the key is never
 * readable by others, not even for a moment (the umask may be looser).
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function exportPrivateKey(key: KeyObject, passphrase?: string): string {
  const pem = passphrase === undefined || passphrase === ''
    ? key.export({ type: 'pkcs8', format: 'pem' })
    : key.export({ type: 'pkcs8', format: 'pem', cipher: KEY_CIPHER, passphrase });
  return pem.toString();
}

export function isEncryptedPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || pem.includes('Proc-Type: 4,ENCRYPTED');
}

/** Parses a PEM private key, turning OpenSSL's terse errors into ones that say what to do. */
export function parsePrivateKey(pem: string, source: string, passphrase?: string): KeyObject {
  const encrypted = isEncryptedPem(pem);
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new CaError(`${source} is encrypted with a passphrase; supply it (--ca-passphrase) to use the CA`);
  }
  try {
    return createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (e) {
    if (encrypted) throw new CaError(`cannot decrypt ${source}: wrong passphrase (${(e as Error).message})`);
    throw new CaError(`cannot read private key ${source}: ${(e as Error).message}`);
  }
}

export function readPrivateKeyFile(file: string, passphrase?: string): KeyObject {
  const pem = readTextFile(file, 'CA private key');
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new CaError(
      `${file} is accessible to group/others (mode ${(st.mode & 0o777).toString(8)}); ` +
      `the CA key must be private: run chmod 600 ${file}`);
  }
  return parsePrivateKey(pem, file, passphrase);
}

export function readTextFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CaError(`${what} not found at ${file}; run "sightline ca init" first`);
    throw new CaError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

export const exists = (file: string): boolean => fs.existsSync(file);
