// Extra origins and clients for the "port 443 is no way around inspection"
// end-to-end tests: servers that cannot prove a name (impostors), a plain
// HTTP server and an SSH-like banner server on port 443, and clients that
// abort TLS handshakes or speak raw TCP from an employee's namespace.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { TlsOriginConfig } from '../../scripts/lab/tls_origin';
import type { Client } from './topology';
import type { InspectOrigins, Site } from './inspect_lab';

/** Answers any SNI with the self-signed chain of selfsigned.test. */
export const IMPOSTOR_SELF_SIGNED_V4 = '10.202.0.4';
/** Answers any SNI with app.test's valid chain: a good certificate for another name. */
export const IMPOSTOR_OTHER_NAME_V4 = '10.202.0.5';
/** Plain HTTP on port 443. */
export const PLAIN_HTTP_V4 = '10.202.0.6';
/** A server that speaks first on port 443 (an SSH greeting), then echoes. */
export const SSH_BANNER_V4 = '10.202.0.7';
export const SSH_GREETING = 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n';
export const PLAIN_HTTP_PATH = '/plain.pem';

/** The listeners above, added to the generated origins (inspect_lab setUpInspection's originExtra). */
export function bypassLabListeners(o: InspectOrigins): Partial<TlsOriginConfig> {
  const sites = o.config.https[0].sites;
  return {
    https: [
      ...o.config.https,
      { address: IMPOSTOR_SELF_SIGNED_V4, port: 443, sites: { 'selfsigned.test': sites['selfsigned.test'] } },
      { address: IMPOSTOR_OTHER_NAME_V4, port: 443, sites: { 'app.test': sites['app.test'] } },
    ],
    http: [...o.config.http, { address: PLAIN_HTTP_V4, port: 443, files: { [PLAIN_HTTP_PATH]: o.rootFile } }],
    banner: [{ address: SSH_BANNER_V4, port: 443, greeting: SSH_GREETING }],
  };
}

/** `site`'s name served at another address: what a client spoofing the SNI toward that server asks for. */
export const spoofed = (site: Site, address: string): Site => ({ name: `${site.name} at ${address}`, host: site.host, address });

/** SHA-256 fingerprint of the leaf a site's origin serves (the lab's own certificate file). */
export function originLeafFingerprint(o: InspectOrigins, host: string): string {
  return new X509Certificate(readFileSync(o.config.https[0].sites[host].certFile)).fingerprint256;
}

/** The first certificate in curl's `-w %{certs}` output. */
export function firstCertIn(text: string): X509Certificate | null {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  return pem ? new X509Certificate(pem) : null;
}

/**
 * `n` TLS handshakes to the site that end without an alert: 'close' (FIN) or
 * 'reset' (RST) as soon as the server's first flight arrives, or 'silent'
 * (node:tls finishes the handshake, then drops a certificate it does not
 * trust without an alert).
 */
export function abortHandshakes(c: Client, site: Site, how: 'close' | 'reset' | 'silent', n: number): void {
  const script = `
    const net = require('net'), tls = require('tls'), { Duplex } = require('stream');
    const [host, address, how, n] = ${JSON.stringify([site.host, site.address, how, n])};
    const once = () => new Promise((resolve) => {
      if (how === 'silent') {
        const t = tls.connect({ host: address, port: 443, servername: host });
        t.on('error', () => resolve());
        t.on('close', () => resolve());
        return;
      }
      const raw = net.connect(443, address);
      const wire = new Duplex({ read() { raw.resume(); }, write(c, _e, cb) { raw.write(c, cb); } });
      raw.once('data', () => (how === 'reset' ? raw.resetAndDestroy() : raw.destroy()));
      raw.on('error', () => resolve());
      raw.on('close', () => { wire.destroy(); resolve(); });
      const t = tls.connect({ socket: wire, servername: host });
      t.on('error', () => undefined);
    });
    (async () => { for (let i = 0; i < n; i++) await once(); })();`;
  c.ns.execOk('node', ['-e', script], { timeoutMs: 30_000 });
}

export interface RawTcpResult {
  /** What the server (or the concentrator) sent, as latin1. */
  received: string;
  /** The connection was closed by the other side before the deadline. */
  closed: boolean;
}

/** A raw TCP exchange from the client: connect, send `send` (if any), optionally reply to what arrives, collect until close or `waitMs`. */
export function rawTcp(c: Client, address: string, port: number, send: string | null, waitMs: number, reply?: string): RawTcpResult {
  const script = `
    const net = require('net');
    const [address, port, send, waitMs, reply] = ${JSON.stringify([address, port, send, waitMs, reply ?? null])};
    let received = '', replied = false;
    const s = net.connect(port, address, () => { if (send !== null) s.write(send); });
    const finish = (closed) => { console.log(JSON.stringify({ received, closed })); process.exit(0); };
    s.on('data', (d) => {
      received += d.toString('latin1');
      if (reply !== null && !replied) { replied = true; s.write(reply); }
    });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    setTimeout(() => finish(false), waitMs);`;
  const out = c.ns.execOk('node', ['-e', script], { timeoutMs: waitMs + 15_000 });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as RawTcpResult;
}
