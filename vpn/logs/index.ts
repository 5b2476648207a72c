// Per-user tunnel logs: the writer (one file per user, rotated), the rate
// limit of records a user can cause, and what reads them back.
export { UserLog, UserLogError, userFileName, stripSecrets, SECRET_KEYS, DEFAULT_MAX_BYTES, DEFAULT_RETENTION_DAYS } from './user_log';
export type { LogFields, UserLogOptions, WrittenRecord } from './user_log';
export { userLogFiles, type LogFile } from './files';
export { readUserLog, lineTime, type LogLine, type LogQuery, type ReadEnd } from './reader';
export { followUserLog } from './follow';
export { formatRecord, LogQueryError, parseTime, parseTypes } from './query';
export { RECORD_TYPES, type RecordType } from './record_types';
export { PerUserRecordLimit, RECORDS_BURST, RECORDS_PER_SECOND } from './record_limit';
export { TunnelRecords } from './tunnel_records';
