// X.509 and DER for the inspection side: one reader (zero-copy TLV views),
// one OID table. The company CA, the minter, the upstream validator and OCSP
// all read certificates here.
export { OID } from './oid';
export {
  DerError, TAG_BIT_STRING, TAG_BOOLEAN, TAG_ENUMERATED, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_NULL, TAG_OCTET_STRING, TAG_OID,
  TAG_SEQUENCE, TAG_SET, TAG_UTC_TIME, bitStringBytes, children, ctx, ctxPrim, decodeOid, decodeTime, encode,
  encodeOid, expectTag, readTlv,
} from './der';
export type { Tlv } from './der';
export { KU, certInfo, parseCertificate, signatureAlgorithmOf, subjectCommonName } from './certificate';
export type { CertInfo, SignatureHash, Subtree } from './certificate';
