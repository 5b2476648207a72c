// The TLS inspection engine: what it is handed per flow, its options, and
// the class that takes a flow's two streams.
export { InspectionEngine, DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS } from './engine';
export type {
  HttpLogContext, HttpLoggerFactory, InspectedFlow, InspectionEngineOptions, NonTlsAction, OnUpstreamError, PinApprovals,
  PinningMode, RecordSink,
} from './engine';
export { readFirstBytes } from './first_bytes';
export type { FirstBytes } from './first_bytes';
