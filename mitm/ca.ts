// The company CA: created per deployment from fresh randomness, never shipped
// and never derived from anything in the code (the mistake of products that
// shipped one CA to every customer, so any customer could impersonate sites
// to all the others' users). Alongside it, a second "untrusted" CA that nobody
// installs: leaves minted from it make a browser show its certificate error
// when the real upstream certificate failed validation.
//
// Default key: ECDSA P-256. It gives ~128-bit security like RSA-3072, but a
// P-256 signature costs tens of microseconds where an RSA-3072 one costs
// over a millisecond, and every first visit to a host signs one leaf (budget:
// 1 ms, DESIGN.md). RSA-3072 remains an option for fleets whose TLS clients
// or policies require an RSA root.

import { KeyObject, X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  VERSION_V3, authorityKeyIdExt, basicConstraintsExt, buildName, buildTime, derOf, extensionsBlock,
  keyUsageExt, publicKeyInfo, randomSerial, seq, signCertificate, signerFor, subjectKeyIdExt, toPem,
} from './ca_der';
import {
  CERT_MODE, CaError, CaPaths, KEY_MODE, caPaths, exists, exportPrivateKey, parsePrivateKey,
  prepareCaDir, readPrivateKeyFile, readTextFile, writeFileAtomic,
} from './ca_store';
import { CertInfo, KU, TAG_SEQUENCE, certInfo, encode } from './x509';

export { CaError, caPaths } from './ca_store';
export type { CaPaths } from './ca_store';

export type CaKeyType = 'ecdsa-p256' | 'rsa-3072';
export type KeyType = CaKeyType | 'rsa-2048';

export const DEFAULT_CA_VALIDITY_DAYS = 3650;
/** Backdating absorbs clients whose clocks run behind ours. */
export const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface InitCaOptions {
  force?: boolean;
  passphrase?: string;
  organization?: string;
  keyType?: CaKeyType;
  validityDays?: number;
  /** Current time in ms; defaults to Date.now(). */
  now?: number;
}

export interface ImportCaOptions {
  /** The issuing CA first, optionally followed by the certificates above it. */
  certPem: string;
  keyPem: string;
  /** Decrypts keyPem if it is encrypted, and encrypts the stored copy. */
  passphrase?: string;
  force?: boolean;
  now?: number;
}

export interface CaInfo {
  certPath: string;
  keyPath: string;
  untrustedCertPath: string;
  subject: string;
  serialNumber: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  keyEncrypted: boolean;
}

export interface LoadedCa {
  /** PEM of the issuing CA certificate alone. */
  certPem: string;
  /** Certificates above an imported intermediate, to send after it; empty for our own root. */
  chainPem: string[];
  key: KeyObject;
  x509: X509Certificate;
  fields: CertInfo;
  fingerprint: string;
  selfSigned: boolean;
}

export interface EnsuredCa {
  ca: LoadedCa;
  untrusted: LoadedCa;
  created: boolean;
}

export function generatePrivateKey(type: KeyType): KeyObject {
  if (type === 'ecdsa-p256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const modulusLength = type === 'rsa-3072' ? 3072 : 2048;
  return generateKeyPairSync('rsa', { modulusLength }).privateKey;
}

/** SHA-256 over the DER certificate, as colon-separated upper-case hex (what browsers display). */
export function caFingerprint(cert: X509Certificate | string | Buffer): string {
  return (cert instanceof X509Certificate ? cert : new X509Certificate(cert)).fingerprint256;
}

const randomSuffix = (): string => randomBytes(6).toString('hex');

/** Self-signed CA: basicConstraints CA pathlen:0 and keyCertSign+cRLSign, both critical (RFC 5280 4.2.1.9, 4.2.1.3). */
function createSelfSignedCa(
  key: KeyObject, commonName: string, organization: string | undefined, validityMs: number, now: number,
): Buffer {
  const signer = signerFor(key);
  const { spkiDer, keyId } = publicKeyInfo(key);
  const name = derOf(buildName(commonName, organization));
  const tbs = encode(TAG_SEQUENCE, [
    derOf(VERSION_V3),
    derOf(randomSerial()),
    signer.algorithmDer,
    name,
    derOf(seq([buildTime(now - CLOCK_SKEW_MS), buildTime(now + validityMs)])),
    name,
    spkiDer,
    derOf(extensionsBlock([
      // pathlen:0 -- this CA signs leaves only; a stolen leaf key cannot become a CA.
      basicConstraintsExt(true, 0),
      keyUsageExt([KU.keyCertSign, KU.cRLSign]),
      subjectKeyIdExt(keyId),
      authorityKeyIdExt(keyId),
    ])),
  ]);
  return signCertificate(tbs, signer);
}

function writePair(certFile: string, keyFile: string, certPem: string, key: KeyObject, passphrase?: string): void {
  writeFileAtomic(keyFile, exportPrivateKey(key, passphrase), KEY_MODE);
  writeFileAtomic(certFile, certPem, CERT_MODE);
}

function createUntrusted(paths: CaPaths, opts: InitCaOptions, now: number): void {
  const key = generatePrivateKey(opts.keyType ?? 'ecdsa-p256');
  const cn = `Sightline UNTRUSTED upstream \u2014 do not trust ${randomSuffix()}`;
  const der = createSelfSignedCa(key, cn, opts.organization, caValidityMs(opts), now);
  writePair(paths.untrustedCert, paths.untrustedKey, toPem(der), key, opts.passphrase);
}

function caValidityMs(opts: InitCaOptions): number {
  const days = opts.validityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  if (!Number.isFinite(days) || days <= 0) throw new CaError(`CA validity must be a positive number of days, got ${days}`);
  return days * DAY_MS;
}

function refuseOverwrite(files: string[], force: boolean | undefined): void {
  if (force === true) return;
  const present = files.find(exists);
  if (present !== undefined) {
    throw new CaError(
      `refusing to overwrite the existing CA at ${present}: every device that trusts it would need the new one; ` +
      'use --force to replace it');
  }
}

function infoOf(paths: CaPaths, certPem: string, keyEncrypted: boolean): CaInfo {
  const x509 = new X509Certificate(certPem);
  return {
    certPath: paths.cert,
    keyPath: paths.key,
    untrustedCertPath: paths.untrustedCert,
    subject: x509.subject,
    serialNumber: x509.serialNumber,
    fingerprint: x509.fingerprint256,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    keyEncrypted,
  };
}

/** Creates a fresh CA and untrusted CA under dataDir/ca. */
export function initCa(dataDir: string, opts: InitCaOptions = {}): CaInfo {
  const paths = caPaths(dataDir);
  refuseOverwrite([paths.cert, paths.key], opts.force);
  const now = opts.now ?? Date.now();
  const validityMs = caValidityMs(opts);
  prepareCaDir(paths);
  const key = generatePrivateKey(opts.keyType ?? 'ecdsa-p256');
  const der = createSelfSignedCa(key, `Sightline Inspection CA ${randomSuffix()}`, opts.organization, validityMs, now);
  const certPem = toPem(der);
  writePair(paths.cert, paths.key, certPem, key, opts.passphrase);
  createUntrusted(paths, opts, now);
  return infoOf(paths, certPem, Boolean(opts.passphrase));
}

export function splitPemCertificates(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => `${b}\n`);
}

function readFields(x509: X509Certificate, source: string): CertInfo {
  try {
    return certInfo(x509);
  } catch (e) {
    throw new CaError(`${source}: malformed certificate: ${(e as Error).message}`);
  }
}

/** The checks that make a certificate+key usable as an issuing CA (RFC 5280 4.2.1.3, 4.2.1.9). */
function checkIssuingCa(x509: X509Certificate, fields: CertInfo, key: KeyObject, source: string, now: number): void {
  if (fields.basicConstraints?.ca !== true) {
    throw new CaError(`${source} is not a CA certificate (basicConstraints CA:TRUE missing); leaves it signs would be rejected`);
  }
  if (fields.keyUsage === null || !fields.keyUsage.has(KU.keyCertSign)) {
    throw new CaError(`${source} lacks keyUsage keyCertSign; it may not sign certificates`);
  }
  if (!x509.checkPrivateKey(key)) {
    throw new CaError(`the private key does not match the certificate in ${source}`);
  }
  if (fields.notAfter.getTime() <= now) {
    throw new CaError(`${source} expired on ${fields.notAfter.toISOString()}`);
  }
  try {
    signerFor(key);
  } catch (e) {
    throw new CaError(`${source}: ${(e as Error).message}`);
  }
}

/** Installs an existing enterprise CA (typically an intermediate under the company root). */
export function importCa(dataDir: string, opts: ImportCaOptions): CaInfo {
  const paths = caPaths(dataDir);
  const now = opts.now ?? Date.now();
  const certs = splitPemCertificates(opts.certPem);
  if (certs.length === 0) throw new CaError('the certificate to import contains no PEM CERTIFICATE block');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certs[0]);
  } catch (e) {
    throw new CaError(`cannot parse the certificate to import: ${(e as Error).message}`);
  }
  const key = parsePrivateKey(opts.keyPem, 'the private key to import', opts.passphrase);
  checkIssuingCa(x509, readFields(x509, 'the certificate to import'), key, 'the certificate to import', now);
  refuseOverwrite([paths.cert, paths.key], opts.force);
  prepareCaDir(paths);
  const certPem = certs.join('');
  writePair(paths.cert, paths.key, certPem, key, opts.passphrase);
  if (!exists(paths.untrustedCert) || !exists(paths.untrustedKey)) {
    createUntrusted(paths, { passphrase: opts.passphrase }, now);
  }
  return infoOf(paths, certPem, Boolean(opts.passphrase));
}

function loadPair(certFile: string, keyFile: string, passphrase: string | undefined, now: number): LoadedCa {
  const pems = splitPemCertificates(readTextFile(certFile, 'CA certificate'));
  if (pems.length === 0) throw new CaError(`${certFile} contains no PEM certificate`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pems[0]);
  } catch (e) {
    throw new CaError(`cannot parse ${certFile}: ${(e as Error).message}`);
  }
  const key = readPrivateKeyFile(keyFile, passphrase);
  const fields = readFields(x509, certFile);
  checkIssuingCa(x509, fields, key, certFile, now);
  return {
    certPem: pems[0],
    chainPem: pems.slice(1),
    key,
    x509,
    fields,
    fingerprint: x509.fingerprint256,
    selfSigned: x509.checkIssued(x509) && x509.verify(x509.publicKey),
  };
}

export function loadCa(dataDir: string, opts: { passphrase?: string; now?: number } = {}): LoadedCa {
  const paths = caPaths(dataDir);
  return loadPair(paths.cert, paths.key, opts.passphrase, opts.now ?? Date.now());
}

export function loadUntrustedCa(dataDir: string, opts: { passphrase?: string; now?: number } = {}): LoadedCa {
  const paths = caPaths(dataDir);
  return loadPair(paths.untrustedCert, paths.untrustedKey, opts.passphrase, opts.now ?? Date.now());
}

/** First start creates the CA; later starts load it. A half-present CA is an error, never silently replaced. */
export function ensureCa(dataDir: string, opts: Omit<InitCaOptions, 'force'> = {}): EnsuredCa {
  const paths = caPaths(dataDir);
  const now = opts.now ?? Date.now();
  const haveCert = exists(paths.cert);
  const haveKey = exists(paths.key);
  let created = false;
  if (!haveCert && !haveKey) {
    initCa(dataDir, opts);
    created = true;
  } else if (haveCert !== haveKey) {
    const [present, missing] = haveCert ? [paths.cert, paths.key] : [paths.key, paths.cert];
    throw new CaError(`${present} exists but ${missing} is missing; restore it, or replace the CA with "sightline ca init --force"`);
  }
  if (!exists(paths.untrustedCert) || !exists(paths.untrustedKey)) {
    prepareCaDir(paths);
    createUntrusted(paths, opts, now);
  }
  return {
    ca: loadPair(paths.cert, paths.key, opts.passphrase, now),
    untrusted: loadPair(paths.untrustedCert, paths.untrustedKey, opts.passphrase, now),
    created,
  };
}
