// Strict validation of an upstream server's certificate chain, without I/O.
// We build the path ourselves (RFC 5280 6.1, with RFC 4158-style depth-first
// search over what the server sent plus AIA-fetched intermediates) so each
// failure carries a precise reason that the logs and the block page can name.

import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { KU, OID, SignatureHash, certInfo } from '../x509';
import { certLabel, namesMatch } from './cert_info';
import { nameConstraintsViolation } from './name_constraints';
import type { TrustStore } from './trust_store';

/** Every verdict of validation against the upstream chain (the `reason` of `tls_upstream_rejected` records, docs/log-schema.json). */
export const VALIDATION_FAILURES = [
  'expired', 'not_yet_valid', 'self_signed', 'untrusted_root', 'hostname_mismatch', 'incomplete_chain', 'weak_signature_sha1', 'weak_signature_md5',
  'weak_rsa_key', 'missing_server_auth_eku', 'not_a_ca', 'path_len_exceeded', 'name_constraints_violation', 'unknown_critical_extension',
  'malformed_certificate', 'bad_signature', 'protocol_too_old', 'revoked', 'revocation_unknown',
] as const;

export type ValidationFailure = (typeof VALIDATION_FAILURES)[number];

export interface ValidationInput {
  /** Leaf first, as presented by the server. */
  chain: readonly X509Certificate[];
  /** The client's SNI, or null when it sent none. */
  hostname: string | null;
  /** The destination address; matched against IP SANs when there is no SNI. */
  ip: string;
  now: Date;
  trust: TrustStore;
  /** As reported by tls.TLSSocket.getProtocol(). */
  negotiatedProtocol: string;
  /** Intermediates fetched via AIA caIssuers. */
  extraIntermediates?: readonly X509Certificate[];
}

export type ValidationResult =
  | { ok: true; path: X509Certificate[] }
  | { ok: false; reason: ValidationFailure; detail: string; missingIssuerUrl?: string };

type Failure = Extract<ValidationResult, { ok: false }>;

/** RFC 8996 deprecates TLS 1.0 and 1.1. */
const ACCEPTED_PROTOCOLS = new Set(['TLSv1.2', 'TLSv1.3']);
/** leaf + intermediates + anchor; real web PKI paths are 3-4 long. Bounds the search. */
const MAX_PATH_LENGTH = 8;
/** CA/B Baseline Requirements 6.1.5. */
const MIN_RSA_MODULUS_BITS = 2048;
const WEAK_HASHES: Partial<Record<SignatureHash, 'weak_signature_sha1' | 'weak_signature_md5'>> = {
  md2: 'weak_signature_md5',
  md4: 'weak_signature_md5',
  md5: 'weak_signature_md5',
  sha1: 'weak_signature_sha1',
};

export function validateChain(input: ValidationInput): ValidationResult {
  if (!ACCEPTED_PROTOCOLS.has(input.negotiatedProtocol)) {
    return fail('protocol_too_old', `negotiated ${input.negotiatedProtocol}; TLS 1.2 or later is required (RFC 8996)`);
  }
  const [leaf, ...presented] = input.chain;
  if (!leaf) return fail('incomplete_chain', 'the server presented no certificate');
  const leafError = parseError(leaf);
  if (leafError) return fail('malformed_certificate', `the server certificate cannot be parsed: ${leafError}`);
  // An intermediate we cannot read is left out, as if it had not been sent.
  const pool = [...presented, ...(input.extraIntermediates ?? [])].filter((c) => parseError(c) === null);
  const built = buildPath(leaf, pool, input.trust);
  if (!built.ok) return built;
  return checkPath(built.path, input) ?? built;
}

function parseError(cert: X509Certificate): string | null {
  try {
    certInfo(cert);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function fail(reason: ValidationFailure, detail: string, missingIssuerUrl?: string): Failure {
  return missingIssuerUrl ? { ok: false, reason, detail, missingIssuerUrl } : { ok: false, reason, detail };
}

/** When several dead ends are found, the one most telling of what is wrong wins. */
const DEAD_END_RANK: Partial<Record<ValidationFailure, number>> = {
  incomplete_chain: 0,
  self_signed: 1,
  untrusted_root: 2,
  weak_signature_sha1: 3,
  weak_signature_md5: 3,
  bad_signature: 3,
};

function buildPath(leaf: X509Certificate, pool: readonly X509Certificate[], trust: TrustStore): { ok: true; path: X509Certificate[] } | Failure {
  let best: Failure | null = null;
  const record = (f: Failure): void => {
    // Strictly greater: on ties the first record, the deepest dead end, is kept.
    if (!best || (DEAD_END_RANK[f.reason] ?? 0) > (DEAD_END_RANK[best.reason] ?? 0)) best = f;
  };

  const extend = (path: X509Certificate[]): X509Certificate[] | null => {
    const cur = path[path.length - 1];
    if (trust.isAnchor(cur)) return path;
    for (const anchor of trust.anchorsFor(cur)) {
      if (signedBy(cur, anchor, record)) return [...path, anchor];
    }
    if (path.length < MAX_PATH_LENGTH - 1) {
      for (const candidate of pool) {
        if (path.some((c) => c.fingerprint256 === candidate.fingerprint256)) continue;
        if (!namesMatch(cur, candidate) || !keyIdsMatch(cur, candidate)) continue;
        if (!signedBy(cur, candidate, record)) continue;
        const found = extend([...path, candidate]);
        if (found) return found;
      }
    }
    record(deadEnd(cur, path.length === 1));
    return null;
  };

  const path = extend([leaf]);
  if (path) return { ok: true, path };
  return best ?? fail('incomplete_chain', 'no issuer found');
}

function deadEnd(cert: X509Certificate, isLeaf: boolean): Failure {
  if (isSelfSigned(cert)) {
    return isLeaf
      ? fail('self_signed', `the server certificate "${certLabel(cert)}" is self-signed`)
      : fail('untrusted_root', `the chain ends at "${certLabel(cert)}", which is not a trusted root`);
  }
  const url = certInfo(cert).caIssuersUrls.find((u) => u.startsWith('http://'));
  return fail('incomplete_chain', `no issuer found for "${certLabel(cert)}" (issuer "${cert.issuer.replace(/\n/g, ', ')}")`, url);
}

function signedBy(child: X509Certificate, issuer: X509Certificate, record: (f: Failure) => void): boolean {
  if (!namesMatch(child, issuer) || !keyIdsMatch(child, issuer)) return false;
  if (safeVerify(child, issuer)) return true;
  const weak = WEAK_HASHES[certInfo(child).signatureHash];
  record(
    weak
      ? fail(weak, `"${certLabel(child)}" is signed with ${certInfo(child).signatureHash}, which is not accepted`)
      : fail('bad_signature', `the signature on "${certLabel(child)}" does not verify with the key of "${certLabel(issuer)}"`),
  );
  return false;
}

function safeVerify(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** RFC 5280 4.2.1.1: when both identifiers are present they must agree. */
function keyIdsMatch(child: X509Certificate, issuer: X509Certificate): boolean {
  const aki = certInfo(child).authorityKeyId;
  const ski = certInfo(issuer).subjectKeyId;
  return !aki || !ski || aki.equals(ski);
}

function isSelfSigned(cert: X509Certificate): boolean {
  return namesMatch(cert, cert) && safeVerify(cert, cert);
}

function checkPath(path: X509Certificate[], input: ValidationInput): Failure | null {
  return (
    checkValidity(path, input.now) ??
    checkCritical(path) ??
    checkAlgorithms(path) ??
    checkIssuers(path) ??
    checkNameConstraints(path) ??
    checkEku(path) ??
    checkName(path[0], input)
  );
}

/** RFC 5280 4.2: a certificate with a critical extension we do not process must be rejected. */
function checkCritical(path: X509Certificate[]): Failure | null {
  for (const cert of path.slice(0, -1)) {
    const unknown = certInfo(cert).unknownCriticalExtensions;
    if (unknown.length > 0) return fail('unknown_critical_extension', `"${certLabel(cert)}" has critical extension(s) ${unknown.join(', ')} that are not understood`);
  }
  return null;
}

function checkNameConstraints(path: X509Certificate[]): Failure | null {
  const violation = nameConstraintsViolation(path);
  return violation ? fail('name_constraints_violation', violation) : null;
}

/** RFC 5280 6.1.3(a)(2), applied to the anchor too, as OpenSSL and browsers do. */
function checkValidity(path: X509Certificate[], now: Date): Failure | null {
  for (const cert of path) {
    const { notBefore, notAfter } = certInfo(cert);
    if (now.getTime() > notAfter.getTime()) {
      return fail('expired', `"${certLabel(cert)}" expired at ${notAfter.toISOString()}`);
    }
    if (now.getTime() < notBefore.getTime()) {
      return fail('not_yet_valid', `"${certLabel(cert)}" is not valid before ${notBefore.toISOString()}`);
    }
  }
  return null;
}

function checkAlgorithms(path: X509Certificate[]): Failure | null {
  // A trust anchor's self-signature is not relied on (RFC 5280 6.1.1(d)), so only issued certs count.
  for (const cert of path.slice(0, -1)) {
    const hash = certInfo(cert).signatureHash;
    const weak = WEAK_HASHES[hash];
    if (weak) return fail(weak, `"${certLabel(cert)}" is signed with ${hash}, which is collision-broken`);
  }
  for (const cert of path) {
    const key = cert.publicKey;
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && (bits ?? 0) < MIN_RSA_MODULUS_BITS) {
      return fail('weak_rsa_key', `"${certLabel(cert)}" has a ${bits}-bit RSA key; at least ${MIN_RSA_MODULUS_BITS} is required`);
    }
  }
  return null;
}

/** RFC 5280 6.1.4(k)-(n): every issuer must be a CA allowed to sign certificates at this depth. */
function checkIssuers(path: X509Certificate[]): Failure | null {
  const anchorIndex = path.length - 1;
  for (let k = 1; k < path.length; k++) {
    const cert = path[k];
    const info = certInfo(cert);
    // v1 roots carry no extensions; an anchor is trusted by configuration, not by its flags.
    if (k !== anchorIndex) {
      if (info.basicConstraints?.ca !== true) return fail('not_a_ca', `"${certLabel(cert)}" issued a certificate but is not a CA (basicConstraints cA is not true)`);
      if (info.keyUsage !== null && !info.keyUsage.has(KU.keyCertSign)) return fail('not_a_ca', `"${certLabel(cert)}" issued a certificate but its keyUsage lacks keyCertSign`);
    }
    const pathLen = info.basicConstraints?.pathLen;
    if (pathLen !== null && pathLen !== undefined) {
      // Intermediates below this one, self-issued ones excepted (6.1.4(l)).
      const below = path.slice(1, k).filter((c) => !namesMatch(c, c)).length;
      if (below > pathLen) return fail('path_len_exceeded', `"${certLabel(cert)}" allows ${pathLen} intermediate(s) below it, the path has ${below}`);
    }
  }
  return null;
}

/**
 * The leaf must be usable for TLS server authentication (RFC 5280 4.2.1.12).
 * Policy for a leaf without an extKeyUsage extension: accepted, as RFC 5280 reads
 * absence as "any purpose" and as Chrome, Firefox and OpenSSL accept it. The CA/B
 * Baseline Requirements oblige public CAs to include it, so public leaves always
 * have one; rejecting the absence would only break private PKIs from upstreamCaFile.
 * anyExtendedKeyUsage is not accepted on a leaf (BR 7.1.2.7.10 forbids it).
 * Intermediates with an EKU must allow serverAuth (or any), as browsers chain EKUs.
 */
function checkEku(path: X509Certificate[]): Failure | null {
  const leafEku = certInfo(path[0]).extKeyUsage;
  if (leafEku && !leafEku.includes(OID.kpServerAuth)) {
    return fail('missing_server_auth_eku', `"${certLabel(path[0])}" extKeyUsage [${leafEku.join(', ')}] does not include serverAuth`);
  }
  for (const cert of path.slice(1, -1)) {
    const eku = certInfo(cert).extKeyUsage;
    if (eku && !eku.includes(OID.kpServerAuth) && !eku.includes(OID.anyExtendedKeyUsage)) {
      return fail('missing_server_auth_eku', `intermediate "${certLabel(cert)}" extKeyUsage does not allow serverAuth`);
    }
  }
  return null;
}

/**
 * RFC 6125 / CA/B BR 7.1.4.2: names come from the subjectAltName only (the CN is
 * ignored, as browsers have done since 2017); wildcards cover exactly one whole
 * left-most label. Without SNI the destination IP must be an IP SAN.
 */
function checkName(leaf: X509Certificate, input: ValidationInput): Failure | null {
  const host = input.hostname?.replace(/\.$/, '').toLowerCase() ?? null;
  if (host === null || isIP(host) !== 0) {
    const ip = host ?? input.ip;
    if (leaf.checkIP(ip) !== undefined) return null;
    return fail('hostname_mismatch', `"${certLabel(leaf)}" has no IP SAN for ${ip} (SANs: ${leaf.subjectAltName ?? 'none'})`);
  }
  const matched = leaf.checkHost(host, {
    subject: 'never',
    wildcards: true,
    partialWildcards: false,
    multiLabelWildcards: false,
    singleLabelSubdomains: false,
  });
  if (matched !== undefined) return null;
  return fail('hostname_mismatch', `"${certLabel(leaf)}" is not valid for ${host} (SANs: ${leaf.subjectAltName ?? 'none'})`);
}
