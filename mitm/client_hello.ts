// ClientHello reader: the first thing the engine does with a port-443 flow.
// It is fed the client's bytes in arrival order and extracts what policy and
// the upstream connection need (SNI, ALPN, versions) without consuming them:
// buffered() hands every byte back for replay into the TLS server socket.
// Sans-IO and total: every input ends in a value, never an exception.
import { isIP } from 'node:net';
import { FramingFailure, HandshakeMessageReader, RECORD_HEADER_LEN } from './tls_record';

// RFC 8446 §4 HandshakeType and §4.2 ExtensionType values used here.
const HANDSHAKE_TYPE_CLIENT_HELLO = 1;
export const EXT_SERVER_NAME = 0; // RFC 6066 §3
export const EXT_ALPN = 16; // RFC 7301 §3.1
export const EXT_PRE_SHARED_KEY = 41;
export const EXT_EARLY_DATA = 42;
export const EXT_SUPPORTED_VERSIONS = 43;
export const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d; // draft-ietf-tls-esni
const NAME_TYPE_HOST_NAME = 0;

// RFC 8446 §4.1.2: Random is 32 bytes; legacy_session_id<0..32>; legacy_compression_methods is only null(0).
const RANDOM_LEN = 32;
const MAX_SESSION_ID_LEN = 32;
const COMPRESSION_NULL = 0;
// RFC 1035 §2.3.4: a name of at most 253 characters (255 octets on the wire), labels of at most 63.
const MAX_HOST_NAME_LEN = 253;
const MAX_LABEL_LEN = 63;

/** Default bound on the ClientHello body; real ones are 200..2000 bytes. */
export const DEFAULT_MAX_CLIENT_HELLO_LEN = 16 * 1024;
/** Bound on records carrying one ClientHello, so tiny fragments cannot stretch the wait. */
export const MAX_CLIENT_HELLO_RECORDS = 64;

export type SniProblem = 'ip_literal' | 'invalid_host_name';

export interface ClientHelloInfo {
  legacyVersion: number;
  /** From supported_versions, GREASE removed; empty when the extension is absent (TLS 1.2 and older). */
  supportedVersions: number[];
  /** host_name from server_name, lowercased and validated; null when absent or rejected (see sniProblem). */
  sni: string | null;
  /** Why a host_name that was sent is not in `sni` (RFC 6066 §3 forbids IP literals). */
  sniProblem: SniProblem | null;
  /** Protocol names in client order, GREASE identifiers (RFC 8701 §2) removed. */
  alpn: string[];
  cipherSuites: number[];
  extensions: number[];
  hasEch: boolean;
  hasEarlyData: boolean;
  sessionIdLength: number;
  /** Stream bytes the ClientHello occupied, record headers included. */
  recordBytes: number;
}

export type ClientHelloResult =
  | { kind: 'need_more' }
  | { kind: 'done'; hello: ClientHelloInfo }
  | { kind: 'not_tls'; reason: string; detail: string }
  | { kind: 'error'; reason: string; detail: string };

export interface ClientHelloReaderOptions {
  /** Largest ClientHello body accepted; default DEFAULT_MAX_CLIENT_HELLO_LEN. */
  maxClientHelloLen?: number;
}

/** RFC 8701 §2: GREASE values are 0x?A?A with both bytes equal. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

const NEED_MORE: ClientHelloResult = { kind: 'need_more' };
const INITIAL_STORE = 2048;

export class ClientHelloReader {
  private store: Buffer = Buffer.alloc(0);
  private len = 0;
  private result: ClientHelloResult = NEED_MORE;
  private readonly framing: HandshakeMessageReader;
  /** Upper bound on stream bytes before a ClientHello must be complete. */
  readonly maxStreamBytes: number;

  constructor(opts: ClientHelloReaderOptions = {}) {
    const maxLen = opts.maxClientHelloLen ?? DEFAULT_MAX_CLIENT_HELLO_LEN;
    this.framing = new HandshakeMessageReader(HANDSHAKE_TYPE_CLIENT_HELLO, 'ClientHello', maxLen, MAX_CLIENT_HELLO_RECORDS);
    this.maxStreamBytes = maxLen + 4 + MAX_CLIENT_HELLO_RECORDS * RECORD_HEADER_LEN;
  }

  get bufferedBytes(): number {
    return this.len;
  }

  /** Everything pushed so far, in order, for replay. The view stays valid after later pushes. */
  buffered(): Buffer {
    return this.store.subarray(0, this.len);
  }

  /**
   * Appends a chunk and returns the verdict so far. Once the verdict is not
   * need_more it is final; later chunks are still buffered for replay.
   */
  push(chunk: Buffer): ClientHelloResult {
    this.append(chunk);
    if (this.result.kind !== 'need_more' || chunk.length === 0) return this.result;
    const r = this.framing.advance(this.store.subarray(0, this.len));
    if (r.kind === 'message') this.result = parseClientHello(r.body, r.streamBytes);
    else if (r.kind !== 'need_more') this.result = r;
    return this.result;
  }

  /** The stream ended (FIN or RST): a ClientHello still incomplete never will be. */
  end(): ClientHelloResult {
    if (this.result.kind === 'need_more') {
      this.result = { kind: 'error', reason: 'eof_before_client_hello', detail: `stream ended after ${this.len} bytes without a complete ClientHello` };
    }
    return this.result;
  }

  private append(chunk: Buffer): void {
    const need = this.len + chunk.length;
    if (need > this.store.length) {
      // Doubling keeps 1-byte segments linear; a fresh buffer leaves earlier
      // buffered() views untouched.
      const grown = Buffer.allocUnsafe(Math.max(need, this.store.length * 2, INITIAL_STORE));
      this.store.copy(grown, 0, 0, this.len);
      this.store = grown;
    }
    chunk.copy(this.store, this.len);
    this.len = need;
  }
}

function fail(reason: string, detail: string): FramingFailure & { kind: 'error' } {
  return { kind: 'error', reason, detail };
}

/** Parses a ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). */
export function parseClientHello(b: Buffer, recordBytes: number): ClientHelloResult {
  const end = b.length;
  let p = 2 + RANDOM_LEN;
  if (end < p + 1) return fail('truncated_client_hello', `ClientHello body is ${end} bytes, shorter than version and random`);
  const legacyVersion = b.readUInt16BE(0);
  const sessionIdLength = b[p++];
  if (sessionIdLength > MAX_SESSION_ID_LEN) return fail('bad_session_id_length', `legacy_session_id is ${sessionIdLength} bytes, at most 32 allowed`);
  p += sessionIdLength;
  if (p + 2 > end) return fail('truncated_client_hello', 'ClientHello ends before cipher_suites');
  const csLen = b.readUInt16BE(p);
  p += 2;
  if (csLen < 2 || csLen % 2 !== 0) return fail('bad_cipher_suites_length', `cipher_suites length ${csLen} is not an even number >= 2`);
  if (p + csLen > end) return fail('truncated_client_hello', `cipher_suites declares ${csLen} bytes, ${end - p} remain`);
  const cipherSuites: number[] = [];
  for (const stop = p + csLen; p < stop; p += 2) {
    const cs = b.readUInt16BE(p);
    if (!isGrease(cs)) cipherSuites.push(cs);
  }
  if (p + 1 > end) return fail('truncated_client_hello', 'ClientHello ends before legacy_compression_methods');
  const cmLen = b[p++];
  if (cmLen < 1 || p + cmLen > end) return fail('bad_compression_methods', `legacy_compression_methods length ${cmLen} with ${end - p} bytes left`);
  // RFC 5246 §7.4.1.2: the list MUST contain the null method.
  if (b.subarray(p, p + cmLen).indexOf(COMPRESSION_NULL) < 0) return fail('bad_compression_methods', 'legacy_compression_methods lacks null(0)');
  p += cmLen;

  const hello: ClientHelloInfo = {
    legacyVersion,
    supportedVersions: [],
    sni: null,
    sniProblem: null,
    alpn: [],
    cipherSuites,
    extensions: [],
    hasEch: false,
    hasEarlyData: false,
    sessionIdLength,
    recordBytes,
  };
  // RFC 5246 §7.4.1.2: a ClientHello without extensions simply ends here.
  if (p === end) return { kind: 'done', hello };
  if (p + 2 > end) return fail('extensions_length_mismatch', 'one stray byte where the extensions length belongs');
  const extLen = b.readUInt16BE(p);
  p += 2;
  if (p + extLen !== end) return fail('extensions_length_mismatch', `extensions declare ${extLen} bytes, ${end - p} remain`);
  const bad = parseExtensions(b, p, end, hello);
  return bad ?? { kind: 'done', hello };
}

function parseExtensions(b: Buffer, p: number, end: number, hello: ClientHelloInfo): ClientHelloResult | null {
  const seen = new Set<number>();
  while (p < end) {
    if (p + 4 > end) return fail('truncated_extension', `extension header at body offset ${p} needs 4 bytes, ${end - p} remain`);
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const data = p + 4;
    if (data + len > end) return fail('truncated_extension', `extension ${type} declares ${len} bytes, ${end - data} remain`);
    // RFC 8446 §4.2: there MUST NOT be more than one extension of the same type.
    if (seen.has(type)) return fail('duplicate_extension', `extension ${type} appears twice`);
    seen.add(type);
    // RFC 8446 §4.2.11: pre_shared_key MUST be the last extension.
    if (type === EXT_PRE_SHARED_KEY && data + len !== end) return fail('psk_not_last', 'pre_shared_key is not the last extension');
    if (!isGrease(type)) hello.extensions.push(type);
    const ext = b.subarray(data, data + len);
    let bad: ClientHelloResult | null = null;
    if (type === EXT_SERVER_NAME) bad = readServerName(ext, hello);
    else if (type === EXT_ALPN) bad = readAlpn(ext, hello);
    else if (type === EXT_SUPPORTED_VERSIONS) bad = readSupportedVersions(ext, hello);
    else if (type === EXT_EARLY_DATA) hello.hasEarlyData = true;
    else if (type === EXT_ENCRYPTED_CLIENT_HELLO) hello.hasEch = true;
    if (bad) return bad;
    p = data + len;
  }
  return null;
}

// RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>, each entry a
// name_type byte and HostName<1..2^16-1>; at most one name per name_type.
function readServerName(e: Buffer, hello: ClientHelloInfo): ClientHelloResult | null {
  if (e.length < 2 || e.readUInt16BE(0) !== e.length - 2 || e.length === 2) {
    return fail('bad_server_name', `server_name list length does not match its ${e.length}-byte extension`);
  }
  let host: Buffer | null = null;
  for (let p = 2; p < e.length; ) {
    if (p + 3 > e.length) return fail('bad_server_name', 'server_name entry truncated');
    const nameType = e[p];
    const nameLen = e.readUInt16BE(p + 1);
    p += 3;
    if (nameLen === 0 || p + nameLen > e.length) return fail('bad_server_name', `server_name entry declares ${nameLen} bytes, ${e.length - p} remain`);
    if (nameType === NAME_TYPE_HOST_NAME) {
      if (host) return fail('bad_server_name', 'more than one host_name in server_name');
      host = e.subarray(p, p + nameLen);
    }
    p += nameLen;
  }
  if (host) {
    const checked = checkHostName(host);
    if (typeof checked === 'string') hello.sni = checked;
    else hello.sniProblem = checked.problem;
  }
  return null;
}

/**
 * Validates a host_name as a DNS name and lowercases it. Underscores and
 * hyphens at label edges are accepted because browsers send them for real
 * hosts; RFC 6066 §3 forbids IP literals and a trailing dot.
 */
export function checkHostName(raw: Buffer): string | { problem: SniProblem } {
  if (raw.length > MAX_HOST_NAME_LEN) return { problem: 'invalid_host_name' };
  const name = raw.toString('latin1').toLowerCase();
  if (isIP(name) !== 0 || name.startsWith('[')) return { problem: 'ip_literal' };
  let labelStart = 0;
  let allDigits = true;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const labelLen = i - labelStart;
      if (labelLen === 0 || labelLen > MAX_LABEL_LEN) return { problem: 'invalid_host_name' };
      labelStart = i + 1;
      if (i < name.length) allDigits = true;
      continue;
    }
    const digit = c >= 0x30 && c <= 0x39;
    if (!digit) allDigits = false;
    if (!(digit || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f)) return { problem: 'invalid_host_name' };
  }
  // URL parsers read a host whose last label is numeric as IPv4 ("127.1").
  if (allDigits) return { problem: 'ip_literal' };
  return name;
}

// RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>, each
// ProtocolName<1..2^8-1>.
function readAlpn(e: Buffer, hello: ClientHelloInfo): ClientHelloResult | null {
  if (e.length < 4 || e.readUInt16BE(0) !== e.length - 2) return fail('bad_alpn', `ALPN list length does not match its ${e.length}-byte extension`);
  for (let p = 2; p < e.length; ) {
    const n = e[p++];
    if (n === 0 || p + n > e.length) return fail('bad_alpn', `ALPN protocol name of ${n} bytes with ${e.length - p} remaining`);
    const isGreaseId = n === 2 && isGrease(e.readUInt16BE(p));
    if (!isGreaseId) hello.alpn.push(e.toString('latin1', p, p + n));
    p += n;
  }
  return null;
}

// RFC 8446 §4.2.1: ClientHello carries ProtocolVersion versions<2..254>.
function readSupportedVersions(e: Buffer, hello: ClientHelloInfo): ClientHelloResult | null {
  const n = e.length > 0 ? e[0] : 0;
  if (n < 2 || n % 2 !== 0 || n !== e.length - 1) return fail('bad_supported_versions', `supported_versions list of ${n} bytes in a ${e.length}-byte extension`);
  for (let p = 1; p < e.length; p += 2) {
    const v = e.readUInt16BE(p);
    if (!isGrease(v)) hello.supportedVersions.push(v);
  }
  return null;
}
