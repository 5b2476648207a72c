// The X.509 certificate reader (RFC 5280 4.1) shared by the company CA, the
// minter and the upstream validator: the parts node:crypto's X509Certificate
// does not expose (raw Names, the signature algorithm, basicConstraints with
// pathLen, keyUsage bits, SKI/AKI, AIA URLs). Views are subarrays of the DER,
// so the exact signed bytes stay available; parsed once per certificate object.

import type { X509Certificate } from 'node:crypto';
import {
  DerError,
  TAG_BOOLEAN,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  TAG_SET,
  Tlv,
  bitStringBytes,
  children,
  ctx,
  decodeOid,
  decodeTime,
  expectTag,
  readTlv,
} from './der';
import { OID } from './oid';

/** RFC 5280 4.2.1.3 KeyUsage bit numbers, counted from the MSB of the first byte. */
export const KU = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
/** GeneralName choices (RFC 5280 4.2.1.6), IMPLICIT context tags. */
const GN_DNS = 0x82;
const GN_URI = 0x86;
const GN_IP = 0x87;

/**
 * Critical extensions this validator processes, or whose semantics it may
 * ignore without accepting more than intended (policies: no policy is
 * required of upstream servers). Any other critical extension fails the
 * certificate (RFC 5280 4.2) — e.g. the CT precertificate poison.
 */
const UNDERSTOOD_CRITICAL = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  OID.certificatePolicies,
  OID.policyConstraints,
  OID.inhibitAnyPolicy,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.authorityInfoAccess,
]);

/** One GeneralSubtree base we enforce; other name forms are kept as 'other' so a permitted-only-other constraint is still seen. */
export type Subtree = { kind: 'dns'; name: string } | { kind: 'ip'; addr: Buffer; mask: Buffer } | { kind: 'other'; tag: number };

export type SignatureHash = 'md2' | 'md4' | 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'none' | 'unknown';

/** Hash used by each signature algorithm OID; 'none' for Ed25519/Ed448 which hash internally. */
const SIGNATURE_HASH: Record<string, SignatureHash> = {
  [OID.md2WithRsa]: 'md2',
  [OID.md4WithRsa]: 'md4',
  [OID.md5WithRsa]: 'md5',
  [OID.sha1WithRsa]: 'sha1',
  [OID.sha1WithRsaOiw]: 'sha1',
  [OID.ecdsaWithSha1]: 'sha1',
  [OID.dsaWithSha1]: 'sha1',
  [OID.sha224WithRsa]: 'sha224',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
  [OID.ecdsaWithSha224]: 'sha224',
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
  [OID.ed25519]: 'none',
  [OID.ed448]: 'none',
};

const HASH_OIDS: Record<string, SignatureHash> = {
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

export interface CertInfo {
  /** DER of tbsCertificate.serialNumber content (big-endian, as encoded). */
  readonly serial: Buffer;
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly signatureAlgorithm: string;
  readonly signatureHash: SignatureHash;
  /** subjectPublicKey BIT STRING value: what OCSP's issuerKeyHash hashes (RFC 6960 4.1.1). */
  readonly publicKeyBits: Buffer;
  /** null when the extension is absent. */
  readonly basicConstraints: { ca: boolean; pathLen?: number } | null;
  /** KeyUsage bit numbers (KU); null when keyUsage is absent (no restriction). */
  readonly keyUsage: ReadonlySet<number> | null;
  /** null when extKeyUsage is absent. */
  readonly extKeyUsage: readonly string[] | null;
  readonly subjectKeyId: Buffer | null;
  readonly authorityKeyId: Buffer | null;
  readonly caIssuersUrls: readonly string[];
  readonly ocspUrls: readonly string[];
  readonly sanDns: readonly string[];
  readonly sanIps: readonly Buffer[];
  /** null when the extension is absent. */
  readonly nameConstraints: { permitted: readonly Subtree[]; excluded: readonly Subtree[] } | null;
  readonly unknownCriticalExtensions: readonly string[];
}

const memo = new WeakMap<X509Certificate, CertInfo>();

export function certInfo(cert: X509Certificate): CertInfo {
  let info = memo.get(cert);
  if (!info) {
    info = parseCertificate(cert.raw);
    memo.set(cert, info);
  }
  return info;
}

export function parseCertificate(der: Buffer): CertInfo {
  const [tbs, sigAlg] = children(expectTag(readTlv(der), TAG_SEQUENCE, 'Certificate'));
  const fields = children(expectTag(tbs, TAG_SEQUENCE, 'TBSCertificate'));
  let i = fields[0]?.tag === ctx(0) ? 1 : 0; // version [0] EXPLICIT, absent for v1
  const serial = expectTag(fields[i++], TAG_INTEGER, 'serialNumber').content;
  i++; // tbs signature AlgorithmIdentifier: must equal the outer one, which we read
  const issuerName = expectTag(fields[i++], TAG_SEQUENCE, 'issuer').raw;
  const [nb, na] = children(expectTag(fields[i++], TAG_SEQUENCE, 'validity'));
  const subjectName = expectTag(fields[i++], TAG_SEQUENCE, 'subject').raw;
  const spki = children(expectTag(fields[i++], TAG_SEQUENCE, 'subjectPublicKeyInfo'));
  const extensions = fields.slice(i).find((f) => f.tag === ctx(3));
  const algorithm = signatureAlgorithmOf(sigAlg);
  const info: Mutable<CertInfo> = {
    serial,
    issuerName,
    subjectName,
    notBefore: decodeTime(nb),
    notAfter: decodeTime(na),
    signatureAlgorithm: algorithm.oid,
    signatureHash: algorithm.hash,
    publicKeyBits: bitStringBytes(spki[1]),
    basicConstraints: null,
    keyUsage: null,
    extKeyUsage: null,
    subjectKeyId: null,
    authorityKeyId: null,
    caIssuersUrls: [],
    ocspUrls: [],
    sanDns: [],
    sanIps: [],
    nameConstraints: null,
    unknownCriticalExtensions: [],
  };
  if (extensions) {
    for (const ext of children(expectTag(children(extensions)[0], TAG_SEQUENCE, 'Extensions'))) {
      const parts = children(ext);
      const oid = decodeOid(parts[0].content);
      const critical = parts.length === 3 && parts[1].tag === TAG_BOOLEAN && parts[1].content[0] !== 0;
      if (critical && !UNDERSTOOD_CRITICAL.has(oid)) info.unknownCriticalExtensions = [...info.unknownCriticalExtensions, oid];
      const value = readTlv(parts[parts.length - 1].content);
      applyExtension(info, oid, value);
    }
  }
  return info;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function applyExtension(info: Mutable<CertInfo>, oid: string, value: Tlv): void {
  switch (oid) {
    case OID.basicConstraints: {
      const parts = children(value);
      let k = 0;
      const ca = parts[k]?.tag === TAG_BOOLEAN ? parts[k++].content[0] !== 0 : false;
      info.basicConstraints = parts[k]?.tag === TAG_INTEGER
        ? { ca, pathLen: parts[k].content.readUIntBE(0, Math.min(parts[k].content.length, 6)) }
        : { ca };
      break;
    }
    case OID.keyUsage: {
      const bits = bitStringBytes(value);
      const set = new Set<number>();
      for (let i = 0; i < bits.length; i++) {
        for (let b = 0; b < 8; b++) if (bits[i] & (0x80 >> b)) set.add(i * 8 + b);
      }
      info.keyUsage = set;
      break;
    }
    case OID.extKeyUsage:
      info.extKeyUsage = children(value).map((p) => decodeOid(p.content));
      break;
    case OID.subjectKeyIdentifier:
      info.subjectKeyId = expectTag(value, TAG_OCTET_STRING, 'subjectKeyIdentifier').content;
      break;
    case OID.authorityKeyIdentifier: {
      const keyId = children(value).find((p) => p.tag === 0x80); // keyIdentifier [0] IMPLICIT
      info.authorityKeyId = keyId ? keyId.content : null;
      break;
    }
    case OID.authorityInfoAccess:
      for (const desc of children(value)) {
        const [method, location] = children(desc);
        if (location?.tag !== GN_URI) continue;
        const url = location.content.toString('latin1');
        const m = decodeOid(method.content);
        if (m === OID.adCaIssuers) info.caIssuersUrls = [...info.caIssuersUrls, url];
        else if (m === OID.adOcsp) info.ocspUrls = [...info.ocspUrls, url];
      }
      break;
    case OID.subjectAltName:
      for (const name of children(value)) {
        if (name.tag === GN_DNS) info.sanDns = [...info.sanDns, name.content.toString('latin1').toLowerCase()];
        else if (name.tag === GN_IP) info.sanIps = [...info.sanIps, name.content];
      }
      break;
    case OID.nameConstraints: {
      // NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] ... }
      const parts = children(value);
      const subtrees = (tag: number): Subtree[] => {
        const field = parts.find((p) => p.tag === tag);
        return field ? children(field).map((gs) => subtree(children(gs)[0])) : [];
      };
      info.nameConstraints = { permitted: subtrees(ctx(0)), excluded: subtrees(ctx(1)) };
      break;
    }
    default:
      break;
  }
}

function subtree(base: Tlv): Subtree {
  if (base.tag === GN_DNS) return { kind: 'dns', name: base.content.toString('latin1').toLowerCase() };
  if (base.tag === GN_IP && (base.content.length === 8 || base.content.length === 32)) {
    const half = base.content.length / 2;
    return { kind: 'ip', addr: base.content.subarray(0, half), mask: base.content.subarray(half) };
  }
  return { kind: 'other', tag: base.tag };
}

/** The signature algorithm of an AlgorithmIdentifier, resolving RSASSA-PSS's hash parameter (RFC 4055 3.1: default SHA-1). */
export function signatureAlgorithmOf(algId: Tlv): { oid: string; hash: SignatureHash } {
  const parts = children(expectTag(algId, TAG_SEQUENCE, 'AlgorithmIdentifier'));
  const oid = decodeOid(parts[0].content);
  if (oid !== OID.rsassaPss) return { oid, hash: SIGNATURE_HASH[oid] ?? 'unknown' };
  const params = parts[1] && parts[1].tag === TAG_SEQUENCE ? children(parts[1]) : [];
  const hashField = params.find((p) => p.tag === ctx(0));
  if (!hashField) return { oid, hash: 'sha1' };
  const hashAlg = children(readTlv(hashField.content))[0];
  return { oid, hash: HASH_OIDS[decodeOid(hashAlg.content)] ?? 'unknown' };
}

/** X.680 string types a DirectoryString (RFC 5280 4.1.2.4) appears in. */
const TAG_UTF8_STRING = 0x0c;
const TAG_PRINTABLE_STRING = 0x13;
const TAG_TELETEX_STRING = 0x14;
const TAG_IA5_STRING = 0x16;
const TAG_BMP_STRING = 0x1e;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** TeletexString is read as latin1, as browsers do in practice; unknown string types give null. */
function directoryString(value: Tlv): string | null {
  switch (value.tag) {
    case TAG_UTF8_STRING:
      try {
        return strictUtf8.decode(value.content);
      } catch {
        throw new DerError('name attribute: invalid UTF-8');
      }
    case TAG_PRINTABLE_STRING: case TAG_IA5_STRING: case TAG_TELETEX_STRING:
      return value.content.toString('latin1');
    case TAG_BMP_STRING:
      if (value.content.length % 2 !== 0) throw new DerError('name attribute: BMPString of odd length');
      return Buffer.from(value.content).swap16().toString('utf16le');
    default:
      return null;
  }
}

/**
 * The subject's CN (RFC 5280 4.1.2.6): the last one in the Name, the one
 * clients treat as most specific. Decoded only when asked for (the minter and
 * the CA export want it; path validation never does), and strictly: a CN that
 * is not valid UTF-8 is an error, not replacement characters.
 */
export function subjectCommonName(info: CertInfo): string | null {
  let cn: string | null = null;
  for (const rdn of children(expectTag(readTlv(info.subjectName), TAG_SEQUENCE, 'subject'))) {
    for (const attr of children(expectTag(rdn, TAG_SET, 'subject RDN'))) {
      const [type, value] = children(expectTag(attr, TAG_SEQUENCE, 'subject attribute'));
      if (decodeOid(expectTag(type, TAG_OID, 'attribute type').content) === OID.commonName && value !== undefined) {
        cn = directoryString(value) ?? cn;
      }
    }
  }
  return cn;
}
