// Exports the company CA certificate for installation on devices and in MDM
// profiles: PEM, DER, or PKCS#12. Only ever the certificate: the private key
// never leaves DATA_DIR/ca, and the untrusted CA is never exported (a device
// that trusted it would accept the leaves we mint for failed upstreams).

import { X509Certificate, createHmac, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { splitPemCertificates } from './ca';
import { fromBin, oid, seq, toBin, derBin } from './ca_der';
import { CaError, caPaths, readTextFile } from './ca_store';
import { OID, certInfo, subjectCommonName } from './x509';

export type CaExportFormat = 'pem' | 'der' | 'p12';

export interface CaExportOptions {
  /** Password protecting the PKCS#12 MAC; importers (Windows, macOS, Android) ask for it. Default empty. */
  p12Password?: string;
  /** HMAC digest of the PKCS#12 MAC; 'sha1' only for old keychains that cannot read SHA-256 MACs. */
  p12Mac?: 'sha256' | 'sha1';
}

const asn1 = forge.asn1;
const UNIVERSAL = asn1.Class.UNIVERSAL;
const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

/** RFC 7292 B.3 ID byte for MAC key material. */
const PKCS12_ID_MAC = 3;
/** OpenSSL's default MAC iteration count; the MAC guards integrity of public data only. */
const MAC_ITERATIONS = 2048;
const MAC_SALT_LEN = 16;

const octets = (bin: string) => asn1.create(UNIVERSAL, T.OCTETSTRING, false, bin);
const explicit0 = (inner: forge.asn1.Asn1) => asn1.create(CONTEXT, 0, true, [inner]);
const dataContentInfo = (contentDer: string) => seq([oid(OID.pkcs7Data), explicit0(octets(contentDer))]);

/**
 * A PFX (RFC 7292) holding one CertBag and no key bag. forge's own builder
 * only accepts certificates with RSA keys, so the structure is laid out here
 * with forge's ASN.1 encoder and its PKCS#12 key derivation.
 */
function certOnlyPkcs12(cert: X509Certificate, password: string, mac: 'sha256' | 'sha1'): Buffer {
  // forge encodes BMPSTRING values from JS strings (UTF-16 code units), as RFC 7292 wants.
  const friendlyName = asn1.create(UNIVERSAL, T.BMPSTRING, false, subjectCommonName(certInfo(cert)) ?? 'Sightline CA');
  const certBag = seq([
    oid(OID.pkcs12CertBag),
    explicit0(seq([oid(OID.pkcs9X509Certificate), explicit0(octets(toBin(cert.raw)))])),
    asn1.create(UNIVERSAL, T.SET, true, [seq([oid(OID.pkcs9FriendlyName), asn1.create(UNIVERSAL, T.SET, true, [friendlyName])])]),
  ]);
  const authSafeDer = derBin(seq([dataContentInfo(derBin(seq([certBag])))]));

  const salt = randomBytes(MAC_SALT_LEN);
  const md = mac === 'sha256' ? forge.md.sha256.create() : forge.md.sha1.create();
  const keyLen = mac === 'sha256' ? 32 : 20;
  const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(toBin(salt)), PKCS12_ID_MAC, MAC_ITERATIONS, keyLen, md);
  const digest = createHmac(mac, fromBin(macKey.getBytes())).update(fromBin(authSafeDer)).digest();
  const digestAlg = seq([oid(mac === 'sha256' ? OID.sha256 : OID.sha1), asn1.create(UNIVERSAL, T.NULL, false, '')]);
  const macData = seq([
    seq([digestAlg, octets(toBin(digest))]),
    octets(toBin(salt)),
    asn1.create(UNIVERSAL, T.INTEGER, false, asn1.integerToDer(MAC_ITERATIONS).getBytes()),
  ]);
  const pfx = seq([
    asn1.create(UNIVERSAL, T.INTEGER, false, asn1.integerToDer(3).getBytes()),
    dataContentInfo(authSafeDer),
    macData,
  ]);
  return fromBin(derBin(pfx));
}

/** The company CA certificate in the requested format. Never the key, never the untrusted CA. */
export function exportCa(dataDir: string, format: CaExportFormat, opts: CaExportOptions = {}): Buffer {
  const file = caPaths(dataDir).cert;
  const pems = splitPemCertificates(readTextFile(file, 'CA certificate'));
  if (pems.length === 0) throw new CaError(`${file} contains no PEM certificate`);
  const cert = new X509Certificate(pems[0]);
  switch (format) {
    case 'pem': return Buffer.from(pems[0]);
    case 'der': return Buffer.from(cert.raw);
    case 'p12': return certOnlyPkcs12(cert, opts.p12Password ?? '', opts.p12Mac ?? 'sha256');
    default: throw new CaError(`unknown CA export format "${String(format)}"; use pem, der or p12`);
  }
}
