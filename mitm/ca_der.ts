// Building blocks for X.509 certificates (RFC 5280 4.1) on top of node-forge's
// ASN.1 encoder. forge cannot sign with ECDSA keys and its pure-JS RSA is
// about 60x slower than OpenSSL (DESIGN.md), so forge only lays out the
// TBSCertificate and node:crypto signs it. Certificates are read with
// mitm/x509, never with forge. forge's byte strings are latin1 ("binary")
// strings; Buffers are converted at the edges of this file.

import { KeyObject, createHash, createPublicKey, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';
import { OID, TAG_BIT_STRING, TAG_SEQUENCE, bitStringBytes, children, encode, readTlv } from './x509';

export type Asn1 = forge.asn1.Asn1;
const asn1 = forge.asn1;
const UNIVERSAL = asn1.Class.UNIVERSAL;
const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on. */
const UTC_TIME_LIMIT_MS = Date.UTC(2050, 0, 1);

/** RFC 5280 upper bound ub-common-name. */
export const UB_COMMON_NAME = 64;

export const toBin = (b: Buffer): string => b.toString('latin1');
export const fromBin = (s: string): Buffer => Buffer.from(s, 'latin1');

export const seq = (items: Asn1[]): Asn1 => asn1.create(UNIVERSAL, T.SEQUENCE, true, items);
const setOf = (items: Asn1[]): Asn1 => asn1.create(UNIVERSAL, T.SET, true, items);
const octets = (bin: string): Asn1 => asn1.create(UNIVERSAL, T.OCTETSTRING, false, bin);
const bool = (v: boolean): Asn1 => asn1.create(UNIVERSAL, T.BOOLEAN, false, v ? '\xff' : '\x00');
const integerRaw = (bin: string): Asn1 => asn1.create(UNIVERSAL, T.INTEGER, false, bin);
const smallInt = (n: number): Asn1 => integerRaw(asn1.integerToDer(n).getBytes());

const oidCache = new Map<string, string>();
/** OID objects are rebuilt per use (forge nodes are cheap) but the encoding is computed once. */
export function oid(dotted: string): Asn1 {
  let der = oidCache.get(dotted);
  if (der === undefined) {
    der = asn1.oidToDer(dotted).getBytes();
    oidCache.set(dotted, der);
  }
  return asn1.create(UNIVERSAL, T.OID, false, der);
}

export const derBin = (node: Asn1): string => asn1.toDer(node).getBytes();

/** Name (RFC 5280 4.1.2.4) with a CN and optional O, both UTF8String. */
export function buildName(commonName: string | null, organization?: string): Asn1 {
  const rdns: Asn1[] = [];
  const attr = (type: string, value: string): Asn1 =>
    setOf([seq([oid(type), asn1.create(UNIVERSAL, T.UTF8, false, forge.util.encodeUtf8(value))])]);
  if (organization !== undefined && organization !== '') rdns.push(attr(OID.organizationName, organization));
  if (commonName !== null) rdns.push(attr(OID.commonName, commonName));
  return seq(rdns);
}

export function buildTime(ms: number): Asn1 {
  // Whole seconds only: truncating never moves a notAfter past its bound.
  const d = new Date(Math.floor(ms / 1000) * 1000);
  return ms < UTC_TIME_LIMIT_MS
    ? asn1.create(UNIVERSAL, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(UNIVERSAL, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

/**
 * CSPRNG output drawn in blocks: one randomBytes call costs about as much as
 * a whole leaf's TBS encoding, so serials are sliced from a refilled pool.
 */
const SERIAL_LEN = 16;
const POOL_SERIALS = 256;
let serialPool = Buffer.alloc(0);
let serialPoolOffset = 0;

/**
 * A positive 128-bit random serial (RFC 5280 4.1.2.2: positive, at most 20
 * octets; CA/B Forum BR 7.1: at least 64 bits from a CSPRNG), minimally encoded.
 */
export function randomSerial(): Asn1 {
  if (serialPoolOffset + SERIAL_LEN > serialPool.length) {
    serialPool = randomBytes(SERIAL_LEN * POOL_SERIALS);
    serialPoolOffset = 0;
  }
  const raw = Buffer.from(serialPool.subarray(serialPoolOffset, serialPoolOffset + SERIAL_LEN));
  serialPoolOffset += SERIAL_LEN;
  if (raw.every((b) => b === 0)) raw[SERIAL_LEN - 1] = 1;
  let start = 0;
  while (raw[start] === 0) start++;
  const body = raw.subarray(start);
  return integerRaw((body[0] & 0x80 ? '\x00' : '') + toBin(body));
}

function extension(id: string, critical: boolean, valueDer: string): Asn1 {
  return critical ? seq([oid(id), bool(true), octets(valueDer)]) : seq([oid(id), octets(valueDer)]);
}

/** RFC 5280 4.2.1.9. pathLen only for a CA. */
export function basicConstraintsExt(ca: boolean, pathLen?: number): Asn1 {
  const body: Asn1[] = [];
  if (ca) {
    body.push(bool(true));
    if (pathLen !== undefined) body.push(smallInt(pathLen));
  }
  return extension(OID.basicConstraints, true, derBin(seq(body)));
}

/** RFC 5280 4.2.1.3, a DER named bit list: trailing zero bits are dropped. */
export function keyUsageExt(bits: number[]): Asn1 {
  let mask = 0;
  for (const bit of bits) mask |= 0x80 >> bit;
  const highest = Math.max(...bits);
  const bitString = String.fromCharCode(7 - highest) + String.fromCharCode(mask);
  return extension(OID.keyUsage, true, derBin(asn1.create(UNIVERSAL, T.BITSTRING, false, bitString)));
}

export function extKeyUsageExt(purposes: string[]): Asn1 {
  return extension(OID.extKeyUsage, false, derBin(seq(purposes.map(oid))));
}

export function subjectKeyIdExt(keyId: Buffer): Asn1 {
  return extension(OID.subjectKeyIdentifier, false, derBin(octets(toBin(keyId))));
}

/** RFC 5280 4.2.1.1: keyIdentifier [0] only, equal to the issuer's SKI. */
export function authorityKeyIdExt(keyId: Buffer): Asn1 {
  return extension(OID.authorityKeyIdentifier, false,
    derBin(seq([asn1.create(CONTEXT, 0, false, toBin(keyId))])));
}

export type SanEntry = { type: 'dns'; value: string } | { type: 'ip'; value: string; bytes: Buffer };

/** RFC 5280 4.2.1.6: critical when the subject Name is empty. */
export function subjectAltNameExt(sans: SanEntry[], critical: boolean): Asn1 {
  const names = sans.map((s) =>
    s.type === 'dns'
      ? asn1.create(CONTEXT, 2, false, s.value)
      : asn1.create(CONTEXT, 7, false, toBin(s.bytes)));
  return extension(OID.subjectAltName, critical, derBin(seq(names)));
}

export function extensionsBlock(exts: Asn1[]): Asn1 {
  return asn1.create(CONTEXT, 3, true, [seq(exts)]);
}

export const VERSION_V3: Asn1 = asn1.create(CONTEXT, 0, true, [smallInt(2)]);

export interface Signer {
  key: KeyObject;
  hash: 'sha256' | 'sha384';
  /** AlgorithmIdentifier DER, used both inside the TBS and after it (RFC 5280 4.1.1.2). */
  algorithmDer: Buffer;
}

/** Chooses the signature algorithm from the issuer key; refuses keys we would sign badly. */
export function signerFor(key: KeyObject): Signer {
  const type = key.asymmetricKeyType;
  let algorithm: Asn1;
  let hash: Signer['hash'] = 'sha256';
  if (type === 'rsa') {
    // RFC 4055 section 5: parameters MUST be NULL for sha256WithRSAEncryption.
    algorithm = seq([oid(OID.sha256WithRsa), asn1.create(UNIVERSAL, T.NULL, false, '')]);
  } else if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    // RFC 5758 3.2: parameters absent; hash sized to the curve.
    if (curve === 'prime256v1') algorithm = seq([oid(OID.ecdsaWithSha256)]);
    else if (curve === 'secp384r1') {
      algorithm = seq([oid(OID.ecdsaWithSha384)]);
      hash = 'sha384';
    } else throw new Error(`unsupported CA key: EC curve ${String(curve)} (use P-256 or P-384)`);
  } else {
    throw new Error(`unsupported CA key type ${String(type)} (use RSA or ECDSA P-256/P-384)`);
  }
  return { key, hash, algorithmDer: fromBin(derBin(algorithm)) };
}

export const derOf = (node: Asn1): Buffer => fromBin(derBin(node));

/**
 * Signs a TBSCertificate given as DER and wraps it as a Certificate
 * (RFC 5280 4.1.1). Framing by hand lets the minter keep the parts that never
 * change (issuer, SPKI, fixed extensions) pre-encoded instead of re-encoding them.
 */
export function signCertificate(tbsDer: Buffer, signer: Signer): Buffer {
  const signature = sign(signer.hash, tbsDer, signer.key);
  const sigBits = encode(TAG_BIT_STRING, [Buffer.from([0]), signature]);
  return encode(TAG_SEQUENCE, [tbsDer, signer.algorithmDer, sigBits]);
}

/**
 * SubjectPublicKeyInfo DER, and its key identifier per RFC 7093 section 2
 * method 1: leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
 */
export function publicKeyInfo(key: KeyObject): { spkiDer: Buffer; keyId: Buffer } {
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const bits = bitStringBytes(children(readTlv(spkiDer))[1]);
  const keyId = createHash('sha256').update(bits).digest().subarray(0, 20);
  return { spkiDer, keyId };
}

/** RFC 7468 PEM, 64-character lines. */
export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
