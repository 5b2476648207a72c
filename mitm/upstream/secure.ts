// Upstream TLS for an inspected flow over a TCP socket that is already
// connected (DESIGN.md: the stack answers the client's SYN only once its
// upstream connect succeeded), validated strictly before anything is minted
// for the client. node's own verification is disabled (rejectUnauthorized:
// false) only so that we can name the exact failure; every connection still
// goes through validateWithAia and checkRevocation.
//
// On a certificate verdict the live TLS session is handed back alongside it,
// so that untrusted-ca mode can still relay once the user has clicked through
// the browser's own warning; callers that refuse must destroy it.
//
// The presented chain: `getPeerX509Certificate()` links `issuerCertificate`
// through exactly the certificates the server sent, in the order sent (node
// 20 copies SSL_get_peer_cert_chain positionally). `getPeerCertificate(true)`
// instead appends the root it finds in node's own CA store, which is not what
// the server sent. Caveat found in node 20: getPeerX509Certificate consumes
// the peer chain, so a second call (or a later getPeerCertificate) sees
// nothing; it is called exactly once here.

import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { AiaFetcher, validateWithAia } from './aia';
import { certLabel } from './cert_info';
import type { HttpFetcher } from './http_fetch';
import { OcspCache, RevocationMode, RevocationResult, checkRevocation } from './revocation';
import type { TrustStore } from './trust_store';
import { VALIDATION_FAILURES } from './validate';
import { TLS_HIGH_WATER_MARK } from '../tls_record';

/** Why an upstream was not accepted: a validation verdict, or no TLS session to judge (docs/log-schema.json lists them). */
export const UPSTREAM_ERRORS = [...VALIDATION_FAILURES, 'connect_failed', 'tls_handshake_failed', 'timeout', 'client_certificate_required'] as const;

export type UpstreamError = (typeof UPSTREAM_ERRORS)[number];

/**
 * The server's certificate_required alert (116, RFC 8446 §4.4.2.4): a TLS 1.3
 * server that asked for a client certificate and got none. It arrives after
 * our side of the handshake completed, so the server's chain was already
 * seen and is still validated: the result is then
 * `client_certificate_required`, never a verdict on that chain.
 */
export const CERTIFICATE_REQUIRED_CODE = 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';
/** A handshake_failure alert (40): what a TLS 1.2 server that requires a client certificate sends (among other causes; server_flight.ts tells). */
export const HANDSHAKE_FAILURE_CODE = 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE';

export interface SecureUpstreamOptions {
  /** The flow's original destination address: matched against IP SANs when there is no SNI. */
  host: string;
  /** The destination port; only named in failure details. */
  port?: number;
  /** The client's SNI; undefined when it sent none (then IP SANs are checked). */
  servername?: string;
  /** The client's ALPN list, offered upstream unchanged. */
  alpn: string[];
  trust: TrustStore;
  revocation: RevocationMode;
  /** Deadline for the TLS handshake and validation. */
  timeoutMs: number;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  ocspCache?: OcspCache;
  /** The wall clock, for validity and freshness checks (the caller's edge reads it). */
  now: () => Date;
  onSoftFail?: (detail: string) => void;
}

export type UpstreamConnection = {
  ok: true;
  socket: tls.TLSSocket;
  alpn: string | null;
  protocol: string;
  /** As presented by the server, leaf first. */
  chain: X509Certificate[];
  /** The validated path, leaf to trust anchor. */
  path: X509Certificate[];
  leaf: X509Certificate;
  revocation: RevocationResult;
  /** The server sent certificate_required, possibly after this result was handed over (TLS 1.3 sends it after our Finished). */
  demandedClientCertificate(): boolean;
};

/** `code`: the TLS error code when the handshake failed (tls_handshake_failed). */
export type UpstreamFailure = { ok: false; error: UpstreamError; detail: string; chain?: X509Certificate[]; code?: string };

/** `socket` is set (and open) only when the handshake completed and the certificate was refused. */
export type SecureUpstreamFailure = UpstreamFailure & { socket?: tls.TLSSocket; alpn?: string | null };

/**
 * A server whose highest version is below our TLS 1.2 floor answers our ClientHello with a
 * protocol_version alert (RFC 5246 E.1; what OpenSSL servers do), or picks the old version in
 * its ServerHello, which OpenSSL on our side refuses as "unsupported protocol". Not included:
 * WRONG_VERSION_NUMBER, which means the peer does not speak TLS at all.
 */
const OLD_PROTOCOL_CODES = new Set(['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_UNSUPPORTED_PROTOCOL']);
/** No real chain is longer; bounds the walk over issuerCertificate links. */
const MAX_PRESENTED_CERTS = 16;

const sharedAia = new AiaFetcher();

let sharedContext: tls.SecureContext | undefined;

/**
 * One client context for every upstream connection: without it tls.connect
 * builds a new one per connection (an SSL_CTX and node's root store, about
 * 0.2 ms). Its trust store is empty on purpose: node's own verification
 * would only be discarded (validation is ours), and when it succeeded node
 * also converted the whole presented chain to objects for its name check.
 */
function upstreamContext(): tls.SecureContext {
  sharedContext ??= tls.createSecureContext({ minVersion: 'TLSv1.2', ca: [] });
  return sharedContext;
}

/** How failure details name the origin. */
export function upstreamLabel(opts: Pick<SecureUpstreamOptions, 'host' | 'port' | 'servername'>): string {
  const address = opts.port === undefined ? opts.host : `${opts.host}:${opts.port}`;
  return opts.servername ? `${address} (${opts.servername})` : address;
}

export function secureUpstream(raw: Duplex, opts: SecureUpstreamOptions): Promise<UpstreamConnection | SecureUpstreamFailure> {
  return new Promise((resolve) => {
    let stapled: Buffer | null = null;
    let settled = false;
    // requestOCSP and highWaterMark are honoured by tls.connect (passed to TLSSocket) but missing from ConnectionOptions' typings.
    const options: tls.ConnectionOptions & Pick<tls.TLSSocketOptions, 'requestOCSP'> & { highWaterMark: number } = {
      socket: raw,
      // RFC 6066 3 forbids IP literals in SNI; such a name is still checked, against IP SANs.
      servername: opts.servername && isIP(opts.servername) === 0 ? opts.servername : undefined,
      ALPNProtocols: opts.alpn.length > 0 ? opts.alpn : undefined,
      rejectUnauthorized: false,
      secureContext: upstreamContext(),
      requestOCSP: true,
      highWaterMark: TLS_HIGH_WATER_MARK,
    };
    const socket = tls.connect(options);
    const settle = (result: UpstreamConnection | SecureUpstreamFailure): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!result.ok && !result.socket) socket.destroy();
      resolve(result);
    };
    const where = upstreamLabel(opts);
    // Once our side of the handshake completed, verify() alone settles: an alert or close meanwhile is noted for it.
    const state: HandshakeState = { secured: false, clientCertificateRequired: false };
    // Stays attached: until the caller pipes the socket, a reset must not become an uncaught 'error'.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (code === CERTIFICATE_REQUIRED_CODE) state.clientCertificateRequired = true;
      // node emits an error after the handshake without closing the socket; nobody may be reading it yet
      // (the client's handshake is still under way), so close it here: whoever takes it sees a closed socket.
      if (state.secured) {
        socket.destroy();
        return;
      }
      if (OLD_PROTOCOL_CODES.has(code)) settle({ ok: false, error: 'protocol_too_old', detail: `${where} offers no TLS 1.2 or later (${code})` });
      else settle({ ok: false, error: 'tls_handshake_failed', detail: `TLS handshake with ${where} failed: ${code || err.message}`, code });
    });
    const closed = (): void => {
      if (!state.secured) settle({ ok: false, error: 'connect_failed', detail: `${where} closed the connection during the TLS handshake` });
    };
    socket.once('close', closed);
    // With allowHalfOpen a FIN ends reading without closing the socket.
    socket.once('end', closed);
    const timer = setTimeout(() => {
      settle({ ok: false, error: 'timeout', detail: `TLS handshake and validation with ${where} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    socket.once('OCSPResponse', (response: Buffer) => (stapled = response));
    socket.once('secureConnect', () => {
      state.secured = true;
      // verify returns failures as values; a rejection here is a bug, still never an open socket behind it.
      verify(socket, stapled, state, opts).then(settle, (err: Error) => settle({ ok: false, error: 'tls_handshake_failed', detail: `validation of ${where} failed: ${err.message}` }));
    });
  });
}

interface HandshakeState {
  /** secureConnect fired: our side of the handshake is complete. */
  secured: boolean;
  /** The server sent certificate_required. */
  clientCertificateRequired: boolean;
}

async function verify(socket: tls.TLSSocket, stapled: Buffer | null, state: HandshakeState, opts: SecureUpstreamOptions): Promise<UpstreamConnection | SecureUpstreamFailure> {
  // Read at once: the chain must be taken before an alert (certificate_required) tears the session down.
  const chain = presentedChain(socket);
  const protocol = socket.getProtocol() ?? 'unknown';
  const alpn = socket.alpnProtocol || null;
  const checked = await validatePresented(chain, stapled, protocol, opts);
  if (!checked.ok) return { ...checked, socket: socket.destroyed ? undefined : socket, alpn };
  if (state.clientCertificateRequired) {
    return { ok: false, error: 'client_certificate_required', detail: `${upstreamLabel(opts)} requires a client certificate (certificate_required alert)`, chain };
  }
  if (socket.destroyed) return { ok: false, error: 'connect_failed', detail: 'upstream closed during validation', chain };
  return {
    ok: true, socket, alpn, protocol, chain, path: checked.path, leaf: checked.leaf, revocation: checked.revocation,
    demandedClientCertificate: () => state.clientCertificateRequired,
  };
}

export type PresentedVerdict =
  | { ok: true; path: X509Certificate[]; leaf: X509Certificate; revocation: RevocationResult }
  | { ok: false; error: UpstreamError; detail: string; chain: X509Certificate[] };

/**
 * The rules of inspection for a chain as a server presented it: path (with
 * AIA completion), validity, algorithms, name, then revocation. Also used
 * for a chain read off a failed TLS 1.2 handshake (server_flight.ts).
 */
export async function validatePresented(chain: X509Certificate[], stapled: Buffer | null, protocol: string, opts: SecureUpstreamOptions): Promise<PresentedVerdict> {
  const now = opts.now();
  const verdict = await validateWithAia(
    { chain, hostname: opts.servername ?? null, ip: opts.host, now, trust: opts.trust, negotiatedProtocol: protocol },
    opts.aia ?? (opts.fetch ? new AiaFetcher({ fetch: opts.fetch }) : sharedAia),
    opts.fetch,
  );
  if (!verdict.ok) return { ok: false, error: verdict.reason, detail: verdict.detail, chain };
  const [leaf, issuer] = verdict.path;
  // A leaf that is itself a configured anchor has no issuer to ask: trusted by configuration.
  const revocation: RevocationResult = issuer
    ? await checkRevocation(leaf, issuer, {
        mode: opts.revocation,
        stapled: stapled ?? undefined,
        fetch: opts.fetch,
        cache: opts.ocspCache,
        now,
        onSoftFail: (o) => opts.onSoftFail?.(`revocation check for "${certLabel(leaf)}" skipped (soft mode): ${o.error}: ${o.detail}`),
      })
    : { status: 'not_checked', allow: true };
  if (!revocation.allow) {
    const why = revocation.status === 'error' ? `${revocation.error}: ${revocation.detail}` : revocation.status;
    return { ok: false, error: revocation.failure ?? 'revocation_unknown', detail: `revocation check for "${certLabel(leaf)}": ${why}`, chain };
  }
  return { ok: true, path: verdict.path, leaf, revocation };
}

/** The chain as the server sent it; stops where a self-signed certificate links to itself. */
function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  for (let cert = socket.getPeerX509Certificate(); cert && chain.length < MAX_PRESENTED_CERTS; cert = cert.issuerCertificate) {
    if (chain.length > 0 && cert.fingerprint256 === chain[chain.length - 1].fingerprint256) break;
    chain.push(cert);
  }
  return chain;
}
