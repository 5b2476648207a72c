// How the validator names and links certificates in a chain: issuer/subject
// Name matching, and the label a failure detail shows.

import type { X509Certificate } from 'node:crypto';
import { certInfo } from '../x509';

/** Whether an issuer certificate's subject is the child's issuer Name. Byte equality is what
 * conforming CAs produce (RFC 5280 7.1 recommends it); node's normalised strings catch re-encodings. */
export function namesMatch(child: X509Certificate, issuer: X509Certificate): boolean {
  if (certInfo(child).issuerName.equals(certInfo(issuer).subjectName)) return true;
  return Boolean(child.issuer) && child.issuer === issuer.subject;
}

/** How a certificate is named in failure details: its subject on one line, else its SANs. */
export function certLabel(cert: X509Certificate): string {
  if (cert.subject) return cert.subject.replace(/\n/g, ', ');
  return cert.subjectAltName ? `(no subject; ${cert.subjectAltName})` : `(no subject; sha256 ${cert.fingerprint256})`;
}
