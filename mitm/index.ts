// Public surface of the TLS inspection engine.
export { CaError, caFingerprint, caPaths, ensureCa, importCa, initCa, loadCa, loadUntrustedCa } from './ca';
export type { CaInfo, CaKeyType, EnsuredCa, LoadedCa } from './ca';
export { exportCa } from './ca_export';
export type { CaExportFormat, CaExportOptions } from './ca_export';
export { LeafMinter, MintError } from './mint';
export type { MintedLeaf, UpstreamLeaf, UpstreamNames } from './mint';
export { ClientHelloReader, checkHostName, isGrease } from './client_hello';
export type { ClientHelloInfo, ClientHelloResult } from './client_hello';
// './engine/index', not './engine': a dist/ built before the engine became a folder may still hold a stale engine.js.
export {
  InspectionCore, InspectionEngine, DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS, readFirstBytes,
} from './engine/index';
export type {
  Command, EngineClock, FirstBytes, FlowEvent, HttpLogContext, HttpLoggerFactory, InspectedFlow, InspectionEngineOptions, NonTlsAction, OnUpstreamError,
  PinApprovals, PinningMode, RecordSink,
} from './engine/index';
export { BypassVerifier } from './bypass';
export { BypassProber, tlsProbe } from './bypass_probe';
export type { BypassProbe } from './bypass_probe';
export { MtlsHosts } from './exemptions';
export { UNDECRYPTED_REASONS, upstreamCertError } from './flow_policy';
export type { FlowPolicyHook, NonTlsDecision, TlsDecision, UndecryptedReason } from './flow_policy';
export type { BypassTarget, BypassVerdict, BypassVerifierOptions, ProbeResult } from './bypass';
export { PROTOCOL_GUESSES, guessProtocol } from './protocol_guess';
export type { ProtocolGuess } from './protocol_guess';
export { PinningError, PinningTracker, isCertificateRejection } from './pinning';
export type { ClientHandshakeEnd, FailureOutcome, PinnedHost, PinningOptions } from './pinning';
export { ALERT_ACCESS_DENIED, ALERT_HANDSHAKE_FAILURE, ALERT_INTERNAL_ERROR, alertRecord, refuseWith, refuseWithAlert } from './terminate';
export { DEFAULT_MAX_REQUEST_HEAD_BYTES, RequestHostReader, requestHost } from './http_host';
export type { RequestHostResult } from './http_host';
export { createHttpLogger } from './http_log';
export type { HttpRequestRecord, HttpLoggerOptions } from './http_log';
export { AiaFetcher, TrustStore, UPSTREAM_ERRORS, dialTls, validateChain, checkRevocation, createHttpFetch } from './upstream';
export type { Dialer, FetchAddressCheck, HttpFetcher } from './upstream';
