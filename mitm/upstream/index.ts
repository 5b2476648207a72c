// Upstream side of TLS inspection: connect to the origin, validate its chain
// strictly (path, validity, algorithms, names, EKU) and check revocation.

export { TrustStore } from './trust_store';
export { validateChain } from './validate';
export type { ValidationFailure, ValidationInput, ValidationResult } from './validate';
export { AiaFetcher, parseIssuerBody, validateWithAia } from './aia';
export type { AiaOptions, AiaResult } from './aia';
export { createHttpFetch, httpFetch } from './http_fetch';
export type { FetchAddressCheck, HttpError, HttpFetcher, HttpRequest, HttpResult } from './http_fetch';
export { CRL_REASONS, certIdFor, encodeOcspRequest, verifyOcspResponse } from './ocsp';
export type { CertId, CrlReason, OcspError, OcspParseResult, OcspVerified } from './ocsp';
export { OcspCache, checkRevocation, defaultOcspCache } from './revocation';
export type { RevocationError, RevocationMode, RevocationOptions, RevocationOutcome, RevocationResult, RevocationSource } from './revocation';
export { CERTIFICATE_REQUIRED_CODE, HANDSHAKE_FAILURE_CODE, UPSTREAM_ERRORS, secureUpstream, validatePresented } from './secure';
export type { PresentedVerdict, SecureUpstreamFailure, SecureUpstreamOptions, UpstreamConnection, UpstreamError, UpstreamFailure } from './secure';
export { probeClientCertificateDemand } from './mtls_scan';
export { ServerFlightScanner } from './server_flight';
export type { ServerFlight } from './server_flight';
export { dialTls } from './connect';
export type { DialTlsOptions, Dialer } from './connect';
