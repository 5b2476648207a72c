// Per-user tunnel logs: the writer (one file per user, rotated), and what
// reads them back.
export { UserLog, UserLogError, userFileName, stripSecrets, SECRET_KEYS } from './user_log';
export type { LogFields, UserLogOptions } from './user_log';
