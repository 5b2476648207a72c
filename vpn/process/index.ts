// The concentrator process around the layers: its logger, its last line of
// defence (exit 70 on a fault), log lines for the stack's incidents, and
// status.json.
export { createLogger, REDACT_PATHS, type Logger } from './log';
export { EXIT_FATAL, ProcessGuard, type FatalReason, type ProcessGuardOptions } from './guard';
export { IncidentLog } from './incidents';
export { StatusFile, peerStatus, peersFingerprint, type PeerStatus, type StatusWrite } from './status_file';
export { environEntries, envStartFromStat, scrubEnvironment, type ScrubResult } from './environ';
