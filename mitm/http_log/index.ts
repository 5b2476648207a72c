// HTTP request logging for inspected connections: sans-IO parsers fed the
// decrypted bytes of each direction, one record per request.
export { createHttpLogger } from './logger';
export { DEFAULT_MAX_HEADER_BYTES, redactTarget } from './record';
export type { HttpLoggerOptions, HttpRequestRecord } from './record';
export { HpackDecoder } from './hpack';
export type { HeaderField, HpackError } from './hpack';
