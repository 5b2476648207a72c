// Every object identifier the inspection side reads or writes, in one table:
// the certificate builder, the certificate reader, OCSP and the PKCS#12
// export all name OIDs from here. Dotted form, as decodeOid returns them.

export const OID = {
  // Name attributes (RFC 5280 appendix A.1, X.520).
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',

  // Certificate extensions (RFC 5280 4.2).
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  policyConstraints: '2.5.29.36',
  extKeyUsage: '2.5.29.37',
  inhibitAnyPolicy: '2.5.29.54',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',

  // Access methods (RFC 5280 4.2.2.1) and OCSP (RFC 6960 4.2.1).
  adOcsp: '1.3.6.1.5.5.7.48.1',
  adCaIssuers: '1.3.6.1.5.5.7.48.2',
  pkixOcspBasic: '1.3.6.1.5.5.7.48.1.1',

  // Extended key usages (RFC 5280 4.2.1.12).
  anyExtendedKeyUsage: '2.5.29.37.0',
  kpServerAuth: '1.3.6.1.5.5.7.3.1',
  kpOcspSigning: '1.3.6.1.5.5.7.3.9',

  // Signature algorithms (RFC 3279, RFC 4055, RFC 5758, RFC 8410).
  md2WithRsa: '1.2.840.113549.1.1.2',
  md4WithRsa: '1.2.840.113549.1.1.3',
  md5WithRsa: '1.2.840.113549.1.1.4',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  rsassaPss: '1.2.840.113549.1.1.10',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  sha224WithRsa: '1.2.840.113549.1.1.14',
  sha1WithRsaOiw: '1.3.14.3.2.29',
  ecdsaWithSha1: '1.2.840.10045.4.1',
  ecdsaWithSha224: '1.2.840.10045.4.3.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  dsaWithSha1: '1.2.840.10040.4.3',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',

  // Hash algorithms (RFC 3279 2.1, RFC 5754 2).
  sha1: '1.3.14.3.2.26',
  sha224: '2.16.840.1.101.3.4.2.4',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',

  // PKCS#7 / PKCS#9 / PKCS#12 (RFC 7292 appendix D).
  pkcs7Data: '1.2.840.113549.1.7.1',
  pkcs12CertBag: '1.2.840.113549.1.12.10.1.3',
  pkcs9X509Certificate: '1.2.840.113549.1.9.22.1',
  pkcs9FriendlyName: '1.2.840.113549.1.9.20',
} as const;
