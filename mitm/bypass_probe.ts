// The bypass gate's probe (bypass.ts): the concentrator itself completes a
// TLS handshake with the flow's destination, on a connection of its own
// dialed like the flows' (dialTls), and validates the certificate for the
// name as inspection would (secureUpstream). Concurrent flows to one
// destination share one probe. I/O, run by the engine's stream adapter.

import type { X509Certificate } from 'node:crypto';
import type { Counters } from '../netstack';
import { type BypassTarget, type ProbeResult, verdictKey } from './bypass';
import {
  type AiaFetcher, type DialTlsOptions, type Dialer, type HttpFetcher, type OcspCache, type RevocationMode, type TrustStore,
  HANDSHAKE_FAILURE_CODE, dialTls, probeClientCertificateDemand,
} from './upstream';

export type BypassProbe = (target: BypassTarget) => Promise<ProbeResult>;

/** Runs probes, one at a time per destination; `bypass.probes` counts those actually made. */
export class BypassProber {
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();

  constructor(private readonly probeFn: BypassProbe, private readonly counters: Counters) {}

  /** Never rejects: a probe that throws is a negative verdict. */
  probe(target: BypassTarget): Promise<ProbeResult> {
    const key = verdictKey(target);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.probeOnce(key, target);
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async probeOnce(key: string, target: BypassTarget): Promise<ProbeResult> {
    this.counters.inc('bypass.probes');
    try {
      return await this.probeFn(target);
    } catch (err) {
      return { ok: false, reason: 'tls_handshake_failed', detail: `probe failed: ${err instanceof Error ? err.message : String(err)}` };
    } finally {
      this.inFlight.delete(key);
    }
  }
}

export interface TlsProbeOptions {
  trust: TrustStore;
  revocation: RevocationMode;
  timeoutMs: number;
  /** The dialer the flows use, so a probe obeys the same egress rules. */
  dial?: Dialer;
  aia?: AiaFetcher;
  fetch?: HttpFetcher;
  ocspCache?: OcspCache;
  /** Wall-clock time for validity checks. */
  now: () => Date;
  onSoftFail?: (target: BypassTarget, detail: string) => void;
}

/** A probe that completes a TLS handshake with the target and validates it as inspection would. */
export function tlsProbe(opts: TlsProbeOptions): BypassProbe {
  return async (target) => {
    const connect: DialTlsOptions = {
      host: target.address,
      port: target.port,
      servername: target.name ?? undefined,
      alpn: target.alpn,
      trust: opts.trust,
      revocation: opts.revocation,
      timeoutMs: opts.timeoutMs,
      dial: opts.dial,
      aia: opts.aia,
      fetch: opts.fetch,
      ocspCache: opts.ocspCache,
      now: opts.now,
      onSoftFail: (detail) => opts.onSoftFail?.(target, detail),
    };
    const up = await dialTls(connect);
    // Validated before the server asked for a client certificate: the name is proven all the same.
    if (!up.ok && up.error === 'client_certificate_required' && up.chain?.[0]) return { ok: true, notAfter: notAfterOf(up.chain[0]) };
    if (!up.ok && up.code === HANDSHAKE_FAILURE_CODE) {
      const mtls = await probeClientCertificateDemand(connect);
      if (mtls?.ok) return { ok: true, notAfter: notAfterOf(mtls.leaf) };
      if (mtls) return { ok: false, reason: mtls.error, detail: mtls.detail };
    }
    if (!up.ok) return { ok: false, reason: up.error, detail: up.detail };
    // A clean close_notify: the probe is an ordinary, short TLS connection for the origin.
    up.socket.end();
    setTimeout(() => up.socket.destroy(), 1_000).unref();
    return { ok: true, notAfter: notAfterOf(up.leaf) };
  };
}

function notAfterOf(leaf: X509Certificate): number {
  const t = Date.parse(leaf.validTo);
  return Number.isFinite(t) ? t : 0;
}
