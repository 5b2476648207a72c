// Reads the parts of a certificate that node:crypto's X509Certificate does not
// expose in structured form (RFC 5280 4.1): the subject Name as an ASN.1 node
// (so a leaf's issuer is byte-identical to its CA's subject), basicConstraints,
// keyUsage bits, SKI, and the DNS/IP subjectAltNames a minted leaf mirrors.

import { Address6 } from 'ip-address';
import forge from 'node-forge';
import { Asn1, SanEntry, fromBin, parseDer } from './ca_der';
import { OID } from './x509';

const asn1 = forge.asn1;
const T = asn1.Type;
const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;
/** X.680 TeletexString; forge has no constant for it. Decoded as latin1, as browsers do in practice. */
const TELETEX_STRING = 20;

export interface CertFields {
  /** The subject Name node; re-encodes to the exact input bytes. */
  subject: Asn1;
  commonName: string | null;
  sans: SanEntry[];
  notBefore: Date;
  notAfter: Date;
  basicConstraints: { ca: boolean; pathLen?: number } | null;
  /** KeyUsage bit numbers (RFC 5280 4.2.1.3), null when the extension is absent. */
  keyUsage: Set<number> | null;
  subjectKeyId: Buffer | null;
}

export class CertParseError extends Error {}

const children = (node: Asn1 | undefined, what: string): Asn1[] => {
  if (node === undefined || !Array.isArray(node.value)) throw new CertParseError(`malformed certificate: ${what}`);
  return node.value;
};
const primitive = (node: Asn1 | undefined, what: string): string => {
  if (node === undefined || typeof node.value !== 'string') throw new CertParseError(`malformed certificate: ${what}`);
  return node.value;
};

function decodeTime(node: Asn1): Date {
  const text = primitive(node, 'validity');
  return node.type === T.UTCTIME ? asn1.utcTimeToDate(text) : asn1.generalizedTimeToDate(text);
}

function decodeDirectoryString(node: Asn1): string | null {
  const raw = primitive(node, 'name attribute');
  switch (node.type as number) {
    case T.UTF8: return forge.util.decodeUtf8(raw);
    case T.PRINTABLESTRING: case T.IA5STRING: case TELETEX_STRING: return raw;
    case T.BMPSTRING: return fromBin(raw).swap16().toString('utf16le');
    default: return null;
  }
}

/** The last CN in the Name, the one clients treat as most specific. */
function commonNameOf(name: Asn1): string | null {
  let cn: string | null = null;
  for (const rdn of children(name, 'subject')) {
    for (const attr of children(rdn, 'subject RDN')) {
      const [type, value] = children(attr, 'subject attribute');
      if (asn1.derToOid(primitive(type, 'attribute type')) === OID.commonName && value !== undefined) {
        cn = decodeDirectoryString(value) ?? cn;
      }
    }
  }
  return cn;
}

export function ipBytesToString(bytes: Buffer): string | null {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return Address6.fromUnsignedByteArray(Array.from(bytes)).correctForm();
  return null;
}

/** GeneralNames: dNSName [2] and iPAddress [7]; other forms are not mirrored. */
function decodeSans(value: Asn1): SanEntry[] {
  const out: SanEntry[] = [];
  for (const gn of children(value, 'subjectAltName')) {
    if (gn.tagClass !== CONTEXT || typeof gn.value !== 'string') continue;
    if (gn.type === 2) out.push({ type: 'dns', value: gn.value });
    else if (gn.type === 7) {
      const bytes = fromBin(gn.value);
      const text = ipBytesToString(bytes);
      if (text !== null) out.push({ type: 'ip', value: text, bytes });
    }
  }
  return out;
}

function decodeKeyUsage(value: Asn1): Set<number> {
  const bits = fromBin(primitive(value, 'keyUsage')).subarray(1);
  const set = new Set<number>();
  bits.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) set.add(i * 8 + b);
  });
  return set;
}

function decodeBasicConstraints(value: Asn1): { ca: boolean; pathLen?: number } {
  const parts = children(value, 'basicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const p of parts) {
    if (p.type === T.BOOLEAN) ca = primitive(p, 'cA') !== '\x00';
    else if (p.type === T.INTEGER) pathLen = parseInt(fromBin(primitive(p, 'pathLen')).toString('hex'), 16);
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

export function readCertificate(der: Buffer): CertFields {
  let root: Asn1;
  try {
    root = parseDer(der);
  } catch (e) {
    throw new CertParseError(`certificate is not valid DER: ${(e as Error).message}`);
  }
  const tbs = children(children(root, 'Certificate')[0], 'TBSCertificate');
  // The version field [0] is optional (absent means v1).
  const base = tbs[0]?.tagClass === CONTEXT && tbs[0].type === 0 ? 1 : 0;
  const validity = children(tbs[base + 3], 'validity');
  const subject = tbs[base + 4];
  children(subject, 'subject');
  const fields: CertFields = {
    subject,
    commonName: commonNameOf(subject),
    sans: [],
    notBefore: decodeTime(validity[0]),
    notAfter: decodeTime(validity[1]),
    basicConstraints: null,
    keyUsage: null,
    subjectKeyId: null,
  };
  const extBlock = tbs.slice(base + 6).find((n) => n.tagClass === CONTEXT && n.type === 3);
  if (extBlock === undefined) return fields;
  for (const ext of children(children(extBlock, 'extensions')[0], 'extensions')) {
    const parts = children(ext, 'extension');
    const id = asn1.derToOid(primitive(parts[0], 'extnID'));
    const valueDer = fromBin(primitive(parts[parts.length - 1], 'extnValue'));
    switch (id) {
      case OID.subjectAltName: fields.sans = decodeSans(parseDer(valueDer)); break;
      case OID.keyUsage: fields.keyUsage = decodeKeyUsage(parseDer(valueDer)); break;
      case OID.basicConstraints: fields.basicConstraints = decodeBasicConstraints(parseDer(valueDer)); break;
      case OID.subjectKeyIdentifier: fields.subjectKeyId = fromBin(primitive(parseDer(valueDer), 'SKI')); break;
      default: break;
    }
  }
  return fields;
}
