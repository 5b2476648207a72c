// Public surface of the TLS inspection engine.
export { CaError, caFingerprint, caPaths, ensureCa, importCa, initCa, loadCa, loadUntrustedCa } from './ca';
export type { CaInfo, CaKeyType, EnsuredCa, LoadedCa } from './ca';
export { exportCa } from './ca_export';
export type { CaExportFormat, CaExportOptions } from './ca_export';
export { LeafMinter, MintError } from './mint';
export type { MintedLeaf, UpstreamLeaf, UpstreamNames } from './mint';
export { ClientHelloReader, isGrease } from './client_hello';
export type { ClientHelloInfo, ClientHelloResult } from './client_hello';
export { InspectionEngine, DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS } from './engine';
export type {
  FlowDecision, HttpLogContext, HttpLoggerFactory, HttpStreamLogger, InspectedFlow, InspectionEngineOptions, NonTlsAction, OnUpstreamError, RecordSink,
} from './engine';
export { PinningError, PinningTracker, isCertificateRejection } from './pinning';
export type { ClientHandshakeEnd, FailureOutcome, PinnedHost, PinningOptions } from './pinning';
export { UserLog, UserLogError, userFileName } from './user_log';
export type { UserLogOptions } from './user_log';
export { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, alertRecord } from './terminate';
export { createHttpLogger } from './http_log';
export type { HttpRequestRecord, HttpLoggerOptions } from './http_log';
export { AiaFetcher, TrustStore, connectUpstream, validateChain, checkRevocation, createHttpFetch } from './upstream';
export type { FetchAddressCheck, HttpFetcher } from './upstream';
