// The TLS inspection engine: a sans-IO core (core.ts, one machine per flow
// in flow.ts, its events and commands in events.ts) and the stream adapter
// that runs it on a flow's two streams (streams.ts).
export { InspectionEngine, wallClock } from './streams';
export { InspectionCore } from './core';
export { FlowMachine } from './flow';
export { CLOSE_LINGER_MS } from './inspect';
export type { ClientTlsResult, Command, FlowEvent, FlowTimer, Side, UpstreamTlsResult } from './events';
export { FirstBytesReader, GUESS_WAIT_MS } from './first_bytes';
export type { FirstBytes, FirstBytesStep } from './first_bytes';
export { readFirstBytes } from './first_bytes_stream';
export { DEFAULT_CLIENT_HANDSHAKE_TIMEOUT_MS, DEFAULT_CLIENT_HELLO_TIMEOUT_MS, DEFAULT_UPSTREAM_HANDSHAKE_TIMEOUT_MS } from './types';
export type {
  EngineClock, HttpLogContext, HttpLoggerFactory, InspectedFlow, InspectionCoreOptions, InspectionEngineOptions, NonTlsAction, OnUpstreamError,
  PinApprovals, PinningMode, RecordSink,
} from './types';
