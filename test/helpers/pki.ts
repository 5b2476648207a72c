// A test "public" PKI: roots, intermediates, leaves and OCSP responder certs
// with every knob the upstream-validation tests need (key type, names,
// validity window, signature hash, EKU, AIA). Certificates are assembled with
// node-forge's ASN.1 and signed with node:crypto, so ECDSA works and the
// encoding is independent from the DER code under test.

import { ChildProcess, spawn } from 'node:child_process';
import { KeyObject, X509Certificate, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

const asn1 = forge.asn1;
type Asn1 = forge.asn1.Asn1;

export type KeyType = 'rsa1024' | 'rsa2048' | 'rsa4096' | 'p256' | 'p384';
export type HashName = 'sha256' | 'sha384' | 'sha1' | 'md5';
export type Eku = 'serverAuth' | 'clientAuth' | 'ocspSigning';
export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface CertOptions {
  /** Common Name; omit for a SAN-only certificate. */
  cn?: string;
  /** Organisation, to tell otherwise identical subjects apart. */
  o?: string;
  key?: KeyType | KeyPair;
  /** The issuing certificate; omitted means self-signed. */
  issuer?: TestCert;
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  hash?: HashName;
  /** basicConstraints: true/false/{pathLen}; 'omit' leaves the extension out. */
  ca?: boolean | { pathLen: number } | 'omit';
  /** Defaults: CA → keyCertSign+cRLSign, leaf → digitalSignature+keyEncipherment; null omits it. */
  keyUsage?: KeyUsage[] | null;
  /** Defaults: leaf → serverAuth, CA → none; null omits it. */
  eku?: Eku[] | null;
  caIssuersUrl?: string;
  ocspUrl?: string;
  /** Positive serial as hex (even length, uppercase, no sign byte needed); random by default. */
  serialHex?: string;
  /** Sign with this key instead of the issuer's (to forge a bad signature). */
  signWith?: KeyObject;
  /** Critical nameConstraints; IP ranges as CIDR ("10.0.0.0/8"). */
  nameConstraints?: { permittedDns?: string[]; excludedDns?: string[]; permittedIps?: string[] };
  /** Further extensions, value given as DER. */
  extraExtensions?: { oid: string; critical: boolean; valueDer: Buffer }[];
}

export interface TestCert {
  cert: X509Certificate;
  der: Buffer;
  pem: string;
  key: KeyObject;
  keyPem: string;
  publicKey: KeyObject;
  serialHex: string;
  /** OpenSSL-style one-line subject, e.g. "/O=Test/CN=x" (for index.txt). */
  subjectLine: string;
  /** Internal: what issuing a child needs. */
  readonly subjectAsn1: Asn1;
  readonly ski: Buffer;
}

const OID: Record<string, string> = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  rsaEncryption: '1.2.840.113549.1.1.1',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  nameConstraints: '2.5.29.30',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
};

const SIG_OID: Record<'rsa' | 'ec', Partial<Record<HashName, string>>> = {
  rsa: { md5: '1.2.840.113549.1.1.4', sha1: '1.2.840.113549.1.1.5', sha256: '1.2.840.113549.1.1.11', sha384: '1.2.840.113549.1.1.12' },
  ec: { sha1: '1.2.840.10045.4.1', sha256: '1.2.840.10045.4.3.2', sha384: '1.2.840.10045.4.3.3' },
};

const KU_BITS: Record<KeyUsage, number> = { digitalSignature: 0x80, keyEncipherment: 0x20, keyCertSign: 0x04, cRLSign: 0x02 };

const DAY_MS = 86_400_000;

export function generateKey(type: KeyType): KeyPair {
  switch (type) {
    case 'rsa1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 });
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
  }
}

export function issueCert(opts: CertOptions): TestCert {
  const keys = typeof opts.key === 'object' ? opts.key : generateKey(opts.key ?? 'p256');
  const isCa = opts.ca !== undefined && opts.ca !== false && opts.ca !== 'omit';
  const serialHex = opts.serialHex ?? randomSerialHex();
  const subjectAsn1 = nameAsn1(opts);
  const spkiDer = keys.publicKey.export({ type: 'spki', format: 'der' });
  const spki = fromDerRawBits(binary(spkiDer));
  const ski = createHash('sha1').update(publicKeyBits(spkiDer)).digest();
  const issuer = opts.issuer;
  const signerKey = opts.signWith ?? issuer?.key ?? keys.privateKey;
  const hash = opts.hash ?? 'sha256';
  const keyKind = signerKey.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
  const sigOid = SIG_OID[keyKind][hash];
  if (!sigOid) throw new Error(`pki: no ${hash} signature algorithm for ${keyKind} keys`);
  const sigAlg = seq([oid(sigOid), ...(keyKind === 'rsa' ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')] : [])]);
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - DAY_MS);
  const notAfter = opts.notAfter ?? new Date(now + 90 * DAY_MS);

  const extensions: Asn1[] = [];
  if (opts.ca !== 'omit') {
    const bc: Asn1[] = [];
    if (isCa) bc.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff'));
    if (typeof opts.ca === 'object') bc.push(integer(opts.ca.pathLen.toString(16).padStart(2, '0')));
    extensions.push(extension(OID.basicConstraints, true, seq(bc)));
  }
  const ku = opts.keyUsage === undefined ? (isCa ? ['keyCertSign', 'cRLSign'] : ['digitalSignature', 'keyEncipherment']) : opts.keyUsage;
  if (ku) extensions.push(extension(OID.keyUsage, true, keyUsageBits(ku as KeyUsage[])));
  const eku = opts.eku === undefined ? (isCa ? null : ['serverAuth']) : opts.eku;
  if (eku) extensions.push(extension(OID.extKeyUsage, false, seq(eku.map((e) => oid(OID[e])))));
  const sans = [...(opts.dns ?? []).map((d) => ctxPrim(2, d)), ...(opts.ips ?? []).map((ip) => ctxPrim(7, binary(ipBytes(ip))))];
  if (sans.length > 0) extensions.push(extension(OID.subjectAltName, !opts.cn, seq(sans)));
  extensions.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  const akiSource = issuer ? issuer.ski : ski;
  extensions.push(extension(OID.authorityKeyIdentifier, false, seq([ctxPrim(0, binary(akiSource))])));
  const access: Asn1[] = [];
  if (opts.ocspUrl) access.push(seq([oid(OID.ocsp), ctxPrim(6, opts.ocspUrl)]));
  if (opts.caIssuersUrl) access.push(seq([oid(OID.caIssuers), ctxPrim(6, opts.caIssuersUrl)]));
  if (access.length > 0) extensions.push(extension(OID.authorityInfoAccess, false, seq(access)));

  if (opts.nameConstraints) extensions.push(extension(OID.nameConstraints, true, nameConstraintsAsn1(opts.nameConstraints)));
  for (const e of opts.extraExtensions ?? []) extensions.push(extension(e.oid, e.critical, asn1.fromDer(binary(e.valueDer))));

  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [integer('02')]),
    integer(serialHex),
    sigAlg,
    issuer ? issuer.subjectAsn1 : subjectAsn1,
    seq([time(notBefore), time(notAfter)]),
    subjectAsn1,
    spki,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [seq(extensions)]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign(hash, tbsDer, signerKey);
  const certAsn1 = seq([tbs, sigAlg, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + binary(signature))]);
  const der = Buffer.from(asn1.toDer(certAsn1).getBytes(), 'binary');
  const cert = new X509Certificate(der);
  return {
    cert,
    der,
    pem: cert.toString(),
    key: keys.privateKey,
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: keys.publicKey,
    serialHex,
    subjectLine: [opts.o ? `/O=${opts.o}` : '', opts.cn ? `/CN=${opts.cn}` : ''].join('') || '/',
    subjectAsn1,
    ski,
  };
}

export function makeRoot(opts: Omit<CertOptions, 'issuer' | 'ca'> = {}): TestCert {
  return issueCert({ cn: 'Sightline Test Root', o: 'Test Public PKI', key: 'rsa2048', ...opts, ca: true });
}

export function makeIntermediate(issuer: TestCert, opts: Omit<CertOptions, 'issuer'> = {}): TestCert {
  return issueCert({ cn: 'Sightline Test Intermediate', o: 'Test Public PKI', key: 'p256', ca: true, ...opts, issuer });
}

export function makeLeaf(issuer: TestCert, opts: Omit<CertOptions, 'issuer'> = {}): TestCert {
  return issueCert({ cn: opts.dns?.[0], key: 'p256', ...opts, issuer });
}

/** Delegated OCSP responder certificate (RFC 6960 4.2.2.2): issued by the CA, EKU id-kp-OCSPSigning. */
export function makeOcspSigner(issuer: TestCert, opts: Omit<CertOptions, 'issuer'> = {}): TestCert {
  return issueCert({ cn: 'Sightline Test OCSP Responder', key: 'p256', eku: ['ocspSigning'], keyUsage: ['digitalSignature'], ...opts, issuer });
}

/** A root → intermediate → leaf hierarchy for `host`, for tests that only need a good chain. */
export function makeChain(host: string, leafOpts: Omit<CertOptions, 'issuer'> = {}): { root: TestCert; intermediate: TestCert; leaf: TestCert } {
  const root = makeRoot();
  const intermediate = makeIntermediate(root);
  const leaf = makeLeaf(intermediate, { dns: [host], ...leafOpts });
  return { root, intermediate, leaf };
}

export const daysFromNow = (days: number): Date => new Date(Date.now() + days * DAY_MS);

// ---- a real OCSP responder: `openssl ocsp` on loopback ----

export interface OcspEntry {
  /** The certificate's serial as hex (TestCert.serialHex / randomSerialHex()). */
  serialHex: string;
  /** V = valid, R = revoked; serials not listed get 'unknown'. */
  status: 'V' | 'R';
  revokedAt?: Date;
  /** CRL reason name as openssl spells it, e.g. 'keyCompromise'. */
  reason?: string;
  notAfter?: Date;
  subjectLine?: string;
}

/** An index entry for an issued certificate. */
export function ocspEntry(cert: TestCert, status: 'V' | 'R', revoked: { revokedAt?: Date; reason?: string } = {}): OcspEntry {
  return { serialHex: cert.serialHex, status, notAfter: new Date(cert.cert.validTo), subjectLine: cert.subjectLine, ...revoked };
}

/** A positive 15-byte serial as uppercase hex, the form openssl's index.txt uses. */
export function randomSerialHex(): string {
  return '4' + randomBytes(15).toString('hex').toUpperCase().slice(1);
}

export interface OcspResponderOptions {
  /** The CA whose certificates are answered for (-CA). */
  ca: TestCert;
  /** The response signer (-rsigner); the CA itself when omitted. */
  signer?: TestCert;
  entries: OcspEntry[];
  /** nextUpdate = thisUpdate + ndays (-ndays); 1 by default. */
  ndays?: number;
  extraArgs?: string[];
}

export interface OcspResponder {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts `openssl ocsp` with an index.txt built from `entries`, on a kernel-chosen port. */
export async function startOcspResponder(opts: OcspResponderOptions): Promise<OcspResponder> {
  const dir = mkdtempSync(join(tmpdir(), 'sightline-ocsp-'));
  const signer = opts.signer ?? opts.ca;
  writeFileSync(join(dir, 'ca.pem'), opts.ca.pem);
  writeFileSync(join(dir, 'signer.pem'), signer.pem);
  writeFileSync(join(dir, 'signer.key'), signer.keyPem);
  writeFileSync(join(dir, 'index.txt'), opts.entries.map(indexLine).join(''));
  writeFileSync(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
  const args = ['ocsp', '-index', 'index.txt', '-port', '0', '-rsigner', 'signer.pem', '-rkey', 'signer.key', '-CA', 'ca.pem'];
  args.push('-ndays', String(opts.ndays ?? 1), ...(opts.extraArgs ?? []));
  const child = spawn('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await acceptedPort(child);
  const pid = child.pid ?? -1;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        process.kill(pid, 'SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** index.txt: status, expiry, revocation[,reason], serial (hex), file, subject — tab separated. */
function indexLine(e: OcspEntry): string {
  const revoked = e.status === 'R' ? opensslTime(e.revokedAt ?? new Date(Date.now() - 3_600_000)) + (e.reason ? `,${e.reason}` : '') : '';
  const expiry = opensslTime(e.notAfter ?? new Date(Date.now() + 365 * DAY_MS));
  return [e.status, expiry, revoked, e.serialHex, 'unknown', e.subjectLine ?? `/CN=${e.serialHex}`].join('\t') + '\n';
}

function opensslTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

/** openssl 3 prints "ACCEPT [::]:PORT PID=N" once listening. */
function acceptedPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`openssl ocsp did not start: ${err}`));
    }, 10_000);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ACCEPT .*:(\d+) PID=/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl ocsp exited with ${code}: ${err}`));
    });
  });
}

// ---- ASN.1 construction ----

/** forge's typings omit the options form; without it BIT STRINGs holding DER get decoded and re-encoded. */
const fromDerRawBits = (bytes: string): Asn1 =>
  (asn1.fromDer as unknown as (b: string, o: { decodeBitStrings: boolean }) => Asn1)(bytes, { decodeBitStrings: false });

function binary(buf: Buffer): string {
  return buf.toString('binary');
}

function seq(items: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}

function oid(dotted: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
}

function integer(hex: string): Asn1 {
  const bytes = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  const positive = bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, binary(positive));
}

function octets(buf: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary(buf));
}

function ctxPrim(tag: number, value: string): Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, value);
}

function time(date: Date): Asn1 {
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function extension(extOid: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(extOid)];
  if (critical) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff'));
  parts.push(octets(Buffer.from(asn1.toDer(value).getBytes(), 'binary')));
  return seq(parts);
}

function nameAsn1(opts: CertOptions): Asn1 {
  const rdns: Asn1[] = [];
  const attr = (type: string, value: string): Asn1 =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([oid(type), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(value))])]);
  if (opts.o) rdns.push(attr(OID.o, opts.o));
  if (opts.cn) rdns.push(attr(OID.cn, opts.cn));
  return seq(rdns);
}

function keyUsageBits(usages: KeyUsage[]): Asn1 {
  const byte = usages.reduce((acc, u) => acc | KU_BITS[u], 0);
  let unused = 0;
  while (byte !== 0 && ((byte >> unused) & 1) === 0) unused++;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unused, byte));
}

/** The subjectPublicKey BIT STRING value inside an SPKI (for SKI, RFC 5280 4.2.1.2 method 1). */
function publicKeyBits(spkiDer: Buffer): Buffer {
  const spki = fromDerRawBits(binary(spkiDer));
  const bits = (spki.value as Asn1[])[1].value as string;
  return Buffer.from(bits.slice(1), 'binary');
}

function nameConstraintsAsn1(nc: NonNullable<CertOptions['nameConstraints']>): Asn1 {
  const subtrees = (names: Asn1[]): Asn1[] => names.map((n) => seq([n]));
  const cidr = (c: string): Asn1 => {
    const [ip, bits] = c.split('/');
    const addr = ipBytes(ip);
    const mask = Buffer.alloc(addr.length);
    for (let i = 0; i < Number(bits); i++) mask[i >> 3] |= 0x80 >> (i & 7);
    return ctxPrim(7, binary(Buffer.concat([addr, mask])));
  };
  const permitted = [...(nc.permittedDns ?? []).map((d) => ctxPrim(2, d)), ...(nc.permittedIps ?? []).map(cidr)];
  const parts: Asn1[] = [];
  if (permitted.length > 0) parts.push(asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, subtrees(permitted)));
  if (nc.excludedDns) parts.push(asn1.create(asn1.Class.CONTEXT_SPECIFIC, 1, true, subtrees(nc.excludedDns.map((d) => ctxPrim(2, d)))));
  return seq(parts);
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('::');
  const parse = (s: string | undefined): number[] => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
