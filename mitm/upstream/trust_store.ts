// Trust anchors for upstream validation: node's bundled Mozilla roots by
// default, or the PEM bundle named by `tls.upstreamCaFile` (which then
// replaces them: an admin who pins a corporate bundle means only that bundle).

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { certInfo } from '../x509';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export class TrustStore {
  private readonly bySubject = new Map<string, X509Certificate[]>();
  private readonly fingerprints = new Set<string>();

  constructor(anchors: readonly X509Certificate[]) {
    for (const cert of anchors) {
      if (this.fingerprints.has(cert.fingerprint256)) continue;
      try {
        certInfo(cert);
      } catch (err) {
        throw new Error(`trust anchor "${cert.subject}" cannot be parsed (${(err as Error).message}); remove it from the bundle`);
      }
      this.fingerprints.add(cert.fingerprint256);
      // Indexed by DER Name and by node's normalised string, so a re-encoded
      // issuer Name (PrintableString vs UTF8String) still finds its anchor.
      for (const key of [derKey(certInfo(cert).subjectName), cert.subject]) {
        const list = this.bySubject.get(key);
        if (list) list.push(cert);
        else this.bySubject.set(key, [cert]);
      }
    }
  }

  static fromPem(pem: string, source = 'PEM bundle'): TrustStore {
    const blocks = pem.match(PEM_CERT_RE) ?? [];
    if (blocks.length === 0) throw new Error(`${source}: no CERTIFICATE blocks found; expected a PEM CA bundle`);
    const certs = blocks.map((block, i) => {
      try {
        return new X509Certificate(block);
      } catch (err) {
        throw new Error(`${source}: certificate #${i + 1} cannot be parsed (${(err as Error).message})`);
      }
    });
    return new TrustStore(certs);
  }

  static fromPemFile(path: string): TrustStore {
    return TrustStore.fromPem(readFileSync(path, 'utf8'), `tls.upstreamCaFile ${path}`);
  }

  /** The Mozilla root program as bundled in node:tls, parsed once per process. */
  static system(): TrustStore {
    systemStore ??= TrustStore.fromPem(rootCertificates.join('\n'), 'node:tls rootCertificates');
    return systemStore;
  }

  /** `tls.upstreamCaFile` when configured, else the system roots. */
  static fromConfig(tls: { upstreamCaFile?: string | null } | undefined): TrustStore {
    return tls?.upstreamCaFile ? TrustStore.fromPemFile(tls.upstreamCaFile) : TrustStore.system();
  }

  get size(): number {
    return this.fingerprints.size;
  }

  /** Anchors whose subject Name is the child's issuer Name. */
  anchorsFor(child: X509Certificate): readonly X509Certificate[] {
    const byDer = this.bySubject.get(derKey(certInfo(child).issuerName)) ?? [];
    const byString = this.bySubject.get(child.issuer) ?? [];
    return byString.length === 0 ? byDer : [...new Set([...byDer, ...byString])];
  }

  isAnchor(cert: X509Certificate): boolean {
    return this.fingerprints.has(cert.fingerprint256);
  }
}

let systemStore: TrustStore | undefined;

function derKey(name: Buffer): string {
  return `der:${name.toString('base64')}`;
}
