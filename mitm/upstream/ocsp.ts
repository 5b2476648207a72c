// OCSP (RFC 6960) without I/O: the request for one certificate, and the
// parsing and full verification of a response, fetched or stapled.

import { X509Certificate, createHash, constants as cryptoConstants, verify as cryptoVerify } from 'node:crypto';
import {
  OID,
  TAG_ENUMERATED,
  TAG_GENERALIZED_TIME,
  TAG_INTEGER,
  TAG_NULL,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  Tlv,
  bitStringBytes,
  certInfo,
  children,
  ctx,
  ctxPrim,
  decodeOid,
  decodeTime,
  encode,
  encodeOid,
  expectTag,
  readTlv,
  signatureAlgorithmOf,
} from '../x509';
import { certLabel, namesMatch } from './cert_info';

/** OCSPResponseStatus successful (RFC 6960 4.2.1). */
const RESPONSE_STATUS_SUCCESSFUL = 0;
const RESPONSE_STATUS_NAMES = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4)', 'sigRequired', 'unauthorized'];
/** Tolerated clock difference with the responder. */
export const OCSP_CLOCK_SKEW_MS = 5 * 60_000;
/** RFC 6960 4.2.2.1: without nextUpdate "newer information is always available"; we still accept
 * a response this young, the CA/B BR 4.9.10 refresh interval for responses. */
export const OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 4 * 86_400_000;

export const CRL_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  '(7)',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type CrlReason = (typeof CRL_REASONS)[number];

/** RFC 6960 4.1.1. SHA-1 is the hash every responder answers for (RFC 5019 2.1.1). */
export interface CertId {
  readonly hashAlgorithm: string;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  readonly serial: Buffer;
}

export type OcspCertStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: Date; reason: CrlReason | null }
  | { status: 'unknown' };

type OcspSingle = OcspCertStatus & { thisUpdate: Date; nextUpdate: Date | null };
export type OcspVerified = OcspSingle & { producedAt: Date };

export type OcspError =
  | 'malformed'
  | 'responder_status'
  | 'unsupported_response_type'
  | 'weak_signature'
  | 'bad_signature'
  | 'unauthorized_responder'
  | 'certid_mismatch'
  | 'not_yet_valid'
  | 'stale';

export type OcspParseResult = { ok: true; response: OcspVerified } | { ok: false; error: OcspError; detail: string };

export function certIdFor(leaf: X509Certificate, issuer: X509Certificate): CertId {
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
  return {
    hashAlgorithm: OID.sha1,
    issuerNameHash: sha1(certInfo(leaf).issuerName),
    issuerKeyHash: sha1(certInfo(issuer).publicKeyBits),
    serial: certInfo(leaf).serial,
  };
}

/** A stable cache key for a CertID. */
export function certIdKey(id: CertId): string {
  return [id.hashAlgorithm, id.issuerNameHash.toString('hex'), id.issuerKeyHash.toString('hex'), id.serial.toString('hex')].join(':');
}

/** OCSPRequest with one Request and no nonce (RFC 5019 2.1.1: responders may pre-sign, so caching, not nonces, bounds replay). */
export function encodeOcspRequest(id: CertId): Buffer {
  const certId = encode(TAG_SEQUENCE, [
    encode(TAG_SEQUENCE, [encodeOid(id.hashAlgorithm), encode(TAG_NULL, Buffer.alloc(0))]),
    encode(TAG_OCTET_STRING, id.issuerNameHash),
    encode(TAG_OCTET_STRING, id.issuerKeyHash),
    encode(TAG_INTEGER, id.serial),
  ]);
  const request = encode(TAG_SEQUENCE, certId);
  const tbsRequest = encode(TAG_SEQUENCE, encode(TAG_SEQUENCE, request));
  return encode(TAG_SEQUENCE, tbsRequest);
}

class OcspFailure {
  constructor(
    readonly error: OcspError,
    readonly detail: string,
  ) {}
}

/**
 * Parses and verifies an OCSPResponse for (leaf, issuer) at `now`: responder
 * authorised (4.2.2.2), signature, CertID, and thisUpdate/nextUpdate freshness.
 */
export function verifyOcspResponse(der: Buffer, leaf: X509Certificate, issuer: X509Certificate, now: Date): OcspParseResult {
  try {
    return { ok: true, response: verifyOrThrow(der, leaf, issuer, now) };
  } catch (err) {
    if (err instanceof OcspFailure) return { ok: false, error: err.error, detail: err.detail };
    return { ok: false, error: 'malformed', detail: `OCSP response cannot be parsed: ${(err as Error).message}` };
  }
}

function verifyOrThrow(der: Buffer, leaf: X509Certificate, issuer: X509Certificate, now: Date): OcspVerified {
  const outer = children(expectTag(readTlv(der), TAG_SEQUENCE, 'OCSPResponse'));
  const status = expectTag(outer[0], TAG_ENUMERATED, 'responseStatus').content[0];
  if (status !== RESPONSE_STATUS_SUCCESSFUL) {
    throw new OcspFailure('responder_status', `responder answered ${RESPONSE_STATUS_NAMES[status] ?? status}`);
  }
  const responseBytes = children(readTlv(expectTag(outer[1], ctx(0), 'responseBytes').content));
  const type = decodeOid(expectTag(responseBytes[0], TAG_OID, 'responseType').content);
  if (type !== OID.pkixOcspBasic) throw new OcspFailure('unsupported_response_type', `response type ${type}`);
  const basic = children(readTlv(expectTag(responseBytes[1], TAG_OCTET_STRING, 'response').content));
  const [tbs, sigAlg, sigBits, certsField] = basic;
  const fields = children(expectTag(tbs, TAG_SEQUENCE, 'ResponseData'));
  let i = fields[0]?.tag === ctx(0) ? 1 : 0;
  const responderId = fields[i++];
  const producedAt = decodeTime(expectTag(fields[i++], TAG_GENERALIZED_TIME, 'producedAt'));
  const responses = children(expectTag(fields[i++], TAG_SEQUENCE, 'responses'));
  const included = certsField ? children(readTlv(expectTag(certsField, ctx(0), 'certs').content)).map((c) => new X509Certificate(c.raw)) : [];

  checkSignature(tbs, sigAlg, bitStringBytes(sigBits), responderId, included, issuer, now);

  const wanted = certIdFor(leaf, issuer);
  const single = responses.map(children).find((parts) => certIdMatches(parts[0], wanted));
  if (!single) throw new OcspFailure('certid_mismatch', `no SingleResponse for serial ${wanted.serial.toString('hex')} of "${certLabel(issuer)}"`);
  return { ...parseSingle(single, now), producedAt };
}

function checkSignature(tbs: Tlv, sigAlg: Tlv, signature: Buffer, responderId: Tlv, included: X509Certificate[], issuer: X509Certificate, now: Date): void {
  const { oid, hash } = signatureAlgorithmOf(sigAlg);
  if (hash === 'md2' || hash === 'md4' || hash === 'md5' || hash === 'sha1' || hash === 'unknown') {
    throw new OcspFailure('weak_signature', `response signed with ${hash} (${oid})`);
  }
  const candidates = [issuer, ...included].filter((c) => responderMatches(responderId, c));
  let authorised = 0;
  for (const signer of candidates) {
    if (!isAuthorisedResponder(signer, issuer, now)) continue;
    authorised++;
    const key = oid === OID.rsassaPss ? { key: signer.publicKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO } : signer.publicKey;
    let valid = false;
    try {
      valid = cryptoVerify(hash === 'none' ? null : hash, tbs.raw, key, signature);
    } catch {
      valid = false;
    }
    if (valid) return;
  }
  if (authorised === 0) {
    throw new OcspFailure('unauthorized_responder', `the responder is neither "${certLabel(issuer)}" nor a delegated OCSP signer it issued`);
  }
  throw new OcspFailure('bad_signature', 'the OCSP response signature does not verify');
}

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (EXPLICIT tags, RFC 6960 4.2.1). */
function responderMatches(responderId: Tlv, cert: X509Certificate): boolean {
  const inner = readTlv(responderId.content);
  if (responderId.tag === ctx(1)) return inner.raw.equals(certInfo(cert).subjectName);
  if (responderId.tag === ctx(2)) return inner.content.equals(createHash('sha1').update(certInfo(cert).publicKeyBits).digest());
  return false;
}

/** RFC 6960 4.2.2.2: the CA itself, or a certificate it issued directly carrying id-kp-OCSPSigning. */
function isAuthorisedResponder(signer: X509Certificate, issuer: X509Certificate, now: Date): boolean {
  if (signer.fingerprint256 === issuer.fingerprint256 || certInfo(signer).publicKeyBits.equals(certInfo(issuer).publicKeyBits)) return true;
  const info = certInfo(signer);
  if (!info.extKeyUsage?.includes(OID.kpOcspSigning)) return false;
  if (now < info.notBefore || now > info.notAfter) return false;
  if (!namesMatch(signer, issuer)) return false;
  try {
    return signer.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function certIdMatches(tlv: Tlv, wanted: CertId): boolean {
  const [alg, nameHash, keyHash, serial] = children(tlv);
  return (
    decodeOid(children(alg)[0].content) === wanted.hashAlgorithm &&
    nameHash.content.equals(wanted.issuerNameHash) &&
    keyHash.content.equals(wanted.issuerKeyHash) &&
    expectTag(serial, TAG_INTEGER, 'serialNumber').content.equals(wanted.serial)
  );
}

function parseSingle(parts: Tlv[], now: Date): OcspSingle {
  const [, certStatus, thisUpdateTlv, ...rest] = parts;
  const thisUpdate = decodeTime(expectTag(thisUpdateTlv, TAG_GENERALIZED_TIME, 'thisUpdate'));
  const nextField = rest.find((p) => p.tag === ctx(0));
  const nextUpdate = nextField ? decodeTime(readTlv(nextField.content)) : null;
  const t = now.getTime();
  if (thisUpdate.getTime() > t + OCSP_CLOCK_SKEW_MS) throw new OcspFailure('not_yet_valid', `thisUpdate ${thisUpdate.toISOString()} is in the future`);
  if (nextUpdate && t > nextUpdate.getTime() + OCSP_CLOCK_SKEW_MS) throw new OcspFailure('stale', `nextUpdate ${nextUpdate.toISOString()} has passed`);
  if (!nextUpdate && t - thisUpdate.getTime() > OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_MS) {
    throw new OcspFailure('stale', `thisUpdate ${thisUpdate.toISOString()} is too old and no nextUpdate is given`);
  }
  const times = { thisUpdate, nextUpdate };
  switch (certStatus.tag) {
    case ctxPrim(0):
      return { status: 'good', ...times };
    case ctx(1): {
      const [when, reasonField] = children(certStatus);
      const code = reasonField ? readTlv(reasonField.content).content[0] : null;
      const reason = code === null ? null : (CRL_REASONS[code] ?? 'unspecified');
      return { status: 'revoked', revokedAt: decodeTime(when), reason, ...times };
    }
    case ctxPrim(2):
      return { status: 'unknown', ...times };
    default:
      throw new OcspFailure('malformed', `unknown CertStatus tag 0x${certStatus.tag.toString(16)}`);
  }
}
