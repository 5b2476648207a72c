// Upstream TLS over the TCP socket the stack already connected (DESIGN.md:
// the client's SYN is answered only once that connect succeeded), validated
// with mitm/upstream exactly as connectUpstream does.
//
// Why not connectUpstream: it dials host:port itself. This takes the open
// socket instead, and on a validation failure it hands back the live TLS
// session alongside the verdict, so that untrusted-ca mode can still relay
// once the user has clicked through the browser's own warning.

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import {
  AiaFetcher, HttpFetcher, OcspCache, RevocationMode, RevocationResult, TrustStore, UpstreamError,
  checkRevocation, validateWithAia,
} from './upstream';

export interface SecureUpstreamOptions {
  /** Destination address: matched against IP SANs when there is no SNI. */
  dstAddress: string;
  /** The client's SNI; undefined when it sent none. */
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
  now?: () => Date;
  onSoftFail?: (detail: string) => void;
}

export type SecureUpstreamResult =
  | { ok: true; socket: tls.TLSSocket; alpn: string | null; protocol: string; leaf: X509Certificate; revocation: RevocationResult }
  /** `socket` is set (and open) only when the handshake completed and the certificate was refused. */
  | { ok: false; error: UpstreamError; detail: string; leaf?: X509Certificate; socket?: tls.TLSSocket; alpn?: string | null };

/** See connect.ts: alerts meaning "no TLS 1.2 or later on the server". */
const OLD_PROTOCOL_CODES = new Set(['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_UNSUPPORTED_PROTOCOL']);
const MAX_PRESENTED_CERTS = 16;

const sharedAia = new AiaFetcher();

export function secureUpstream(raw: Socket, opts: SecureUpstreamOptions): Promise<SecureUpstreamResult> {
  return new Promise((resolve) => {
    let stapled: Buffer | null = null;
    let settled = false;
    const options: tls.ConnectionOptions & Pick<tls.TLSSocketOptions, 'requestOCSP'> = {
      socket: raw,
      servername: opts.servername,
      ALPNProtocols: opts.alpn.length > 0 ? opts.alpn : undefined,
      // Verification is ours (validateWithAia) so the failure can be named precisely.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      requestOCSP: true,
    };
    const socket = tls.connect(options);
    const settle = (result: SecureUpstreamResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!result.ok && !result.socket) socket.destroy();
      resolve(result);
    };
    const where = `${opts.dstAddress}${opts.servername ? ` (${opts.servername})` : ''}`;
    // Stays attached: until the engine pipes the socket, a reset must not become an uncaught 'error'.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (OLD_PROTOCOL_CODES.has(code)) settle({ ok: false, error: 'protocol_too_old', detail: `${where} offers no TLS 1.2 or later (${code})` });
      else settle({ ok: false, error: 'tls_handshake_failed', detail: `TLS handshake with ${where} failed: ${code || err.message}` });
    });
    const closed = (): void => settle({ ok: false, error: 'connect_failed', detail: `${where} closed the connection during the TLS handshake` });
    socket.once('close', closed);
    // With allowHalfOpen a FIN ends reading without closing the socket.
    socket.once('end', closed);
    const timer = setTimeout(() => {
      settle({ ok: false, error: 'timeout', detail: `TLS handshake and validation with ${where} took longer than ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    socket.once('OCSPResponse', (response: Buffer) => (stapled = response));
    socket.once('secureConnect', () => {
      verify(socket, stapled, opts).then(settle, (err: Error) => settle({ ok: false, error: 'tls_handshake_failed', detail: `validation of ${where} failed: ${err.message}` }));
    });
  });
}

async function verify(socket: tls.TLSSocket, stapled: Buffer | null, opts: SecureUpstreamOptions): Promise<SecureUpstreamResult> {
  const chain = presentedChain(socket);
  const protocol = socket.getProtocol() ?? 'unknown';
  const alpn = socket.alpnProtocol || null;
  const now = opts.now?.() ?? new Date();
  const verdict = await validateWithAia(
    { chain, hostname: opts.servername ?? null, ip: opts.dstAddress, now, trust: opts.trust, negotiatedProtocol: protocol },
    opts.aia ?? (opts.fetch ? new AiaFetcher({ fetch: opts.fetch }) : sharedAia),
  );
  const leaf = chain[0];
  if (!verdict.ok) return { ok: false, error: verdict.reason, detail: verdict.detail, leaf, socket, alpn };
  const [validLeaf, issuer] = verdict.path;
  const revocation: RevocationResult = issuer
    ? await checkRevocation(validLeaf, issuer, {
        mode: opts.revocation,
        stapled: stapled ?? undefined,
        fetch: opts.fetch,
        cache: opts.ocspCache,
        now,
        onSoftFail: (o) => opts.onSoftFail?.(`${o.error}: ${o.detail}`),
      })
    : { status: 'not_checked', allow: true };
  if (!revocation.allow) {
    const why = revocation.status === 'error' ? `${revocation.error}: ${revocation.detail}` : revocation.status;
    return { ok: false, error: revocation.failure ?? 'revocation_unknown', detail: `revocation check: ${why}`, leaf, socket, alpn };
  }
  if (socket.destroyed) return { ok: false, error: 'connect_failed', detail: 'upstream closed during validation', leaf };
  return { ok: true, socket, alpn, protocol, leaf: validLeaf, revocation };
}

/** The chain as the server sent it; getPeerX509Certificate may be called once only (see connect.ts). */
function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  for (let cert = socket.getPeerX509Certificate(); cert && chain.length < MAX_PRESENTED_CERTS; cert = cert.issuerCertificate) {
    if (chain.length > 0 && cert.fingerprint256 === chain[chain.length - 1].fingerprint256) break;
    chain.push(cert);
  }
  return chain;
}
