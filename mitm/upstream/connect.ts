// Opens the upstream TLS connection for an inspected flow and validates it
// strictly before anything is minted for the client. node's own verification
// is disabled (rejectUnauthorized: false) only so that we can name the exact
// failure; every connection still goes through validateChain and revocation.
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
import tls from 'node:tls';
import { AiaFetcher, validateWithAia } from './aia';
import { certLabel } from './cert_info';
import type { HttpFetcher } from './http_fetch';
import { OcspCache, RevocationMode, RevocationResult, checkRevocation } from './revocation';
import type { TrustStore } from './trust_store';
import type { ValidationFailure } from './validate';

export type UpstreamError = ValidationFailure | 'connect_failed' | 'tls_handshake_failed' | 'timeout';

export interface ConnectUpstreamOptions {
  /** The address to connect to (the flow's original destination). */
  host: string;
  port: number;
  /** The client's SNI; undefined when it sent none (then IP SANs are checked). */
  servername?: string;
  /** The client's ALPN list, offered upstream unchanged. */
  alpn: string[];
  trust: TrustStore;
  revocation: RevocationMode;
  /** Deadline for TCP connect plus TLS handshake. */
  timeoutMs: number;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  ocspCache?: OcspCache;
  now?: () => Date;
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
};

export type UpstreamFailure = { ok: false; error: UpstreamError; detail: string; chain?: X509Certificate[] };

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

export async function connectUpstream(opts: ConnectUpstreamOptions): Promise<UpstreamConnection | UpstreamFailure> {
  const handshake = await handshakeUpstream(opts);
  if (!handshake.ok) return handshake;
  const { socket, stapled, chain } = handshake;
  const fail = (error: UpstreamError, detail: string): UpstreamFailure => {
    socket.destroy();
    return { ok: false, error, detail, chain };
  };
  // Until the caller takes the socket, a reset must not become an uncaught 'error'.
  let socketError: Error | null = null;
  const onError = (err: Error): void => {
    socketError = err;
  };
  socket.on('error', onError);
  try {
    const protocol = socket.getProtocol() ?? 'unknown';
    const now = opts.now?.() ?? new Date();
    const verdict = await validateWithAia(
      { chain, hostname: opts.servername ?? null, ip: opts.host, now, trust: opts.trust, negotiatedProtocol: protocol },
      opts.aia ?? (opts.fetch ? new AiaFetcher({ fetch: opts.fetch }) : sharedAia),
    );
    if (!verdict.ok) return fail(verdict.reason, verdict.detail);
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
      return fail(revocation.failure ?? 'revocation_unknown', `revocation check for "${certLabel(leaf)}": ${why}`);
    }
    if (socketError || socket.destroyed) {
      return fail('connect_failed', `upstream closed during validation${socketError ? `: ${(socketError as Error).message}` : ''}`);
    }
    return { ok: true, socket, alpn: socket.alpnProtocol || null, protocol, chain, path: verdict.path, leaf, revocation };
  } catch (err) {
    // Only a bug gets here (failures are values); never leave the socket open behind it.
    socket.destroy();
    throw err;
  } finally {
    socket.off('error', onError);
  }
}

type Handshake = { ok: true; socket: tls.TLSSocket; stapled: Buffer | null; chain: X509Certificate[] } | UpstreamFailure;

function handshakeUpstream(opts: ConnectUpstreamOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    let stapled: Buffer | null = null;
    let tcpConnected = false;
    let settled = false;
    // requestOCSP is honoured by tls.connect (passed to TLSSocket) but missing from ConnectionOptions' typings.
    const options: tls.ConnectionOptions & Pick<tls.TLSSocketOptions, 'requestOCSP'> = {
      host: opts.host,
      port: opts.port,
      // RFC 6066 3 forbids IP literals in SNI; such a name is still checked, against IP SANs.
      servername: opts.servername && isIP(opts.servername) === 0 ? opts.servername : undefined,
      ALPNProtocols: opts.alpn.length > 0 ? opts.alpn : undefined,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      requestOCSP: true,
    };
    const socket = tls.connect(options);
    const settle = (result: Handshake): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', onError);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      const code = err.code ?? '';
      if (OLD_PROTOCOL_CODES.has(code)) {
        settle({ ok: false, error: 'protocol_too_old', detail: `${opts.host}:${opts.port} offers no TLS 1.2 or later (${code})` });
      } else if (tcpConnected) {
        settle({ ok: false, error: 'tls_handshake_failed', detail: `TLS handshake with ${opts.host}:${opts.port} failed: ${code || err.message}` });
      } else {
        settle({ ok: false, error: 'connect_failed', detail: `cannot connect to ${opts.host}:${opts.port}: ${code || err.message}` });
      }
    };
    const timer = setTimeout(() => {
      const phase = tcpConnected ? 'TLS handshake' : 'TCP connect';
      settle({ ok: false, error: 'timeout', detail: `${phase} to ${opts.host}:${opts.port} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    socket.on('error', onError);
    socket.once('connect', () => (tcpConnected = true));
    socket.once('OCSPResponse', (response: Buffer) => (stapled = response));
    socket.once('secureConnect', () => settle({ ok: true, socket, stapled, chain: presentedChain(socket) }));
  });
}

function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  for (let cert = socket.getPeerX509Certificate(); cert && chain.length < MAX_PRESENTED_CERTS; cert = cert.issuerCertificate) {
    chain.push(cert);
  }
  return chain;
}
