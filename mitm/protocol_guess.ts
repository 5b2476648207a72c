// What a stream on an inspected port speaks when it is not TLS: a label for
// the `non_tls` record, from the first bytes of whichever side spoke first.
// Only the label is ever logged, never the bytes (they may be credentials:
// an SMTP AUTH line, an HTTP Authorization header).
//
// Sans-IO: a pure function of the bytes seen so far. `final` false means more
// bytes may come: while the bytes are still a prefix of a known signature the
// answer is null ("need more"), so a guess does not depend on segmentation.

/** Every label a `non_tls` record can carry (docs/log-schema.json lists them). */
export const PROTOCOL_GUESSES = [
  'http', 'http2', 'ssh', 'smtp', 'ftp', 'pop3', 'imap', 'irc', 'socks4', 'socks5', 'bittorrent', 'mysql', 'sslv2', 'text', 'unknown',
] as const;

export type ProtocolGuess = (typeof PROTOCOL_GUESSES)[number];

/** Which side's bytes are being guessed from. */
export type Speaker = 'client' | 'server';

/** Longest signature below; a prefix this long decides. */
const MAX_SIGNATURE_LEN = 20;

/** Openings a client sends first (RFC 9112 §3 methods, RFC 9113 §3.4 preface, RFC 4253 §4.2, RFC 5321 §4.1.1). */
const CLIENT_SIGNATURES: ReadonlyArray<readonly [string, ProtocolGuess]> = [
  ...['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'PATCH', 'TRACE'].map((m) => [`${m} `, 'http'] as const),
  ['PRI * HTTP/2.0', 'http2'],
  ['SSH-', 'ssh'],
  ['EHLO ', 'smtp'],
  ['HELO ', 'smtp'],
  ['NICK ', 'irc'],
  ['CAP LS', 'irc'],
  ['\x13BitTorrent protocol', 'bittorrent'],
];

/** Greetings a server sends first (RFC 4253 §4.2, RFC 1939 §4, RFC 9051 §7.1). 220 is SMTP's and FTP's, told apart below. */
const SERVER_SIGNATURES: ReadonlyArray<readonly [string, ProtocolGuess]> = [
  ['SSH-', 'ssh'],
  ['+OK', 'pop3'],
  ['* OK', 'imap'],
  ['* PREAUTH', 'imap'],
];

export function guessProtocol(bytes: Buffer, from: Speaker, final: boolean): ProtocolGuess | null {
  if (bytes.length === 0) return final ? 'unknown' : null;
  const head = bytes.toString('latin1', 0, Math.min(bytes.length, MAX_SIGNATURE_LEN));
  const signatures = from === 'client' ? CLIENT_SIGNATURES : SERVER_SIGNATURES;
  for (const [sig, guess] of signatures) {
    if (head.startsWith(sig)) return guess;
  }
  if (!final && signatures.some(([sig]) => sig.startsWith(head))) return null;
  const binary = from === 'client' ? clientBinary(bytes) : serverBinary(bytes);
  if (binary) return binary;
  if (from === 'server' && /^220[ -]/.test(head)) return greeting220(bytes, final);
  return isText(bytes) ? 'text' : 'unknown';
}

function clientBinary(b: Buffer): ProtocolGuess | null {
  // RFC 1928 §3: VER 5, NMETHODS, then exactly NMETHODS method bytes.
  if (b[0] === 0x05 && b.length >= 2 && b[1] > 0 && b.length === 2 + b[1]) return 'socks5';
  // SOCKS4: VER 4, CD 1 (connect) or 2 (bind), DSTPORT, DSTIP, USERID, NUL.
  if (b[0] === 0x04 && (b[1] === 0x01 || b[1] === 0x02) && b.length >= 9 && b[b.length - 1] === 0) return 'socks4';
  // SSLv2-format CLIENT-HELLO (RFC 6101 E.1): two-byte header with the high bit, then message type 1.
  if ((b[0] & 0x80) !== 0 && b.length >= 3 && b[2] === 0x01) return 'sslv2';
  return null;
}

function serverBinary(b: Buffer): ProtocolGuess | null {
  // MySQL's initial handshake packet: 3-byte length, sequence 0, protocol version 10.
  if (b.length >= 5 && b[3] === 0 && b[4] === 0x0a && b.readUIntLE(0, 3) === b.length - 4) return 'mysql';
  return null;
}

/** "220 mail.example ESMTP Postfix" or "220 (vsFTPd 3.0.5)": the first line says which. */
function greeting220(b: Buffer, final: boolean): ProtocolGuess | null {
  const text = b.toString('latin1', 0, Math.min(b.length, 512));
  const eol = text.indexOf('\n');
  if (eol < 0 && !final && b.length < 512) return null;
  const line = eol < 0 ? text : text.slice(0, eol);
  if (/SMTP/i.test(line)) return 'smtp';
  if (/FTP/i.test(line)) return 'ftp';
  return 'text';
}

/** Printable ASCII with line breaks and tabs: some line-based text protocol. */
function isText(b: Buffer): boolean {
  const n = Math.min(b.length, 256);
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === 0x09 || c === 0x0a || c === 0x0d) continue;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}
