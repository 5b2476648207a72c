// Minting of leaf certificates that mirror an upstream server's names, signed
// by the company CA (or by the untrusted CA when the upstream failed
// validation, so the browser shows the failure instead of hiding it).
//
// A first visit to a host may add at most 1 ms (DESIGN.md). What makes that
// possible: one leaf key pair per minter (generating a key per host would
// dominate), everything that does not depend on the host prepared once
// (issuer Name, SPKI, AKI/SKI, keyUsage/EKU), and native signing. Results go
// in a bounded LRU keyed by the name set and the issuer.

import { KeyObject, X509Certificate } from 'node:crypto';
import { CLOCK_SKEW_MS, KeyType, LoadedCa, generatePrivateKey } from './ca';
import {
  SanEntry, Signer, VERSION_V3, authorityKeyIdExt, basicConstraintsExt, buildName, buildTime, derOf,
  extKeyUsageExt, keyUsageExt, publicKeyInfo, randomSerial, seq, signCertificate, signerFor, subjectAltNameExt,
  subjectKeyIdExt, toPem,
} from './ca_der';
import { MintError, SanInput, chooseCommonName, normalizeSans, sanSetKey } from './mint_names';
import { Counters } from '../netstack';
import { IpAddress } from '../netstack/wire';
import { KU, OID, TAG_SEQUENCE, certInfo, ctx, encode, parseCertificate, subjectCommonName } from './x509';

export { MintError } from './mint_names';
export type { SanInput } from './mint_names';

export interface UpstreamNames {
  subjectCN?: string;
  sans: SanInput[];
  notAfter?: Date;
}

/** What the upstream presented: its names, or its leaf certificate (X509Certificate or DER). */
export type UpstreamLeaf = UpstreamNames | X509Certificate | Buffer;

export interface MintedLeaf {
  certPem: string;
  certDer: Buffer;
  keyPem: string;
  key: KeyObject;
  /** Leaf followed by the intermediates a client needs (the issuer unless it is a self-signed root). */
  chainPem: string;
  notAfter: Date;
}

export interface LeafMinterOptions {
  cacheSize?: number;
  validityMs?: number;
  keyType?: KeyType;
}

export interface MintOptions {
  sni?: string;
  /** Wall-clock ms: the leaf is valid from then (less the clock skew allowance), and a cached one is judged by it. */
  now: number;
}

export interface MinterStats {
  hits: number;
  misses: number;
  evictions: number;
  size: number;
}

export const DEFAULT_CACHE_SIZE = 10_000;
/** Short-lived leaves: a leaked leaf (or its key) is useful for days, not years. */
export const DEFAULT_LEAF_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;
/** A cached leaf this close to its notAfter is minted again rather than served. */
const REFRESH_MARGIN_MS = 60 * 60 * 1000;

interface CacheEntry {
  leaf: MintedLeaf;
  notAfterMs: number;
}

export class LeafMinter {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheSize: number;
  private readonly validityMs: number;
  private readonly signer: Signer;
  private readonly issuerPrefix: string;
  private readonly issuerNotAfterMs: number;
  private readonly leafKey: KeyObject;
  /** The one key of every leaf this minter makes (PKCS#8 PEM). */
  readonly keyPem: string;
  private readonly chainSuffix: string;
  // Pre-encoded TBSCertificate parts that are the same for every leaf.
  private readonly versionDer: Buffer;
  private readonly algorithmAndIssuerDer: Buffer;
  private readonly spkiDer: Buffer;
  private readonly fixedExtensionsDer: Buffer;
  /** hits, misses, evictions of the leaf cache. */
  readonly counters = new Counters();

  constructor(private readonly issuer: LoadedCa, opts: LeafMinterOptions = {}) {
    this.cacheSize = opts.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.validityMs = opts.validityMs ?? DEFAULT_LEAF_VALIDITY_MS;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1) throw new MintError(`cacheSize must be a positive integer, got ${this.cacheSize}`);
    if (!(this.validityMs > 0)) throw new MintError(`validityMs must be positive, got ${this.validityMs}`);
    const keyType = opts.keyType ?? 'ecdsa-p256';
    this.signer = signerFor(issuer.key);
    this.issuerPrefix = `${issuer.fingerprint}|`;
    this.issuerNotAfterMs = issuer.fields.notAfter.getTime();
    this.leafKey = generatePrivateKey(keyType);
    this.keyPem = this.leafKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.chainSuffix = (issuer.selfSigned ? '' : issuer.certPem) + issuer.chainPem.join('');
    const { spkiDer, keyId } = publicKeyInfo(this.leafKey);
    this.versionDer = derOf(VERSION_V3);
    // The CA's subject bytes as they are: the leaf's issuer must match them exactly (RFC 5280 7.1).
    this.algorithmAndIssuerDer = Buffer.concat([this.signer.algorithmDer, issuer.fields.subjectName]);
    this.spkiDer = spkiDer;
    // RFC 5280 4.2.1.3: keyEncipherment only where TLS 1.2 RSA key transport can use it.
    const usage = keyType === 'ecdsa-p256' ? [KU.digitalSignature] : [KU.digitalSignature, KU.keyEncipherment];
    const fixed = [
      basicConstraintsExt(false),
      keyUsageExt(usage),
      extKeyUsageExt([OID.kpServerAuth]),
      subjectKeyIdExt(keyId),
    ];
    // RFC 5280 4.2.1.1: AKI = the issuer's SKI lets clients pick the right issuer.
    if (issuer.fields.subjectKeyId !== null) fixed.push(authorityKeyIdExt(issuer.fields.subjectKeyId));
    this.fixedExtensionsDer = Buffer.concat(fixed.map(derOf));
  }

  get stats(): MinterStats {
    const c = this.counters.values;
    return { hits: c.hits ?? 0, misses: c.misses ?? 0, evictions: c.evictions ?? 0, size: this.cache.size };
  }

  /** A leaf for the upstream's names, from the cache when one is still good. Throws MintError. */
  mint(upstream: UpstreamLeaf, opts: MintOptions): MintedLeaf {
    const { now } = opts;
    const names = describe(upstream);
    let sans = normalizeSans(names.sans);
    // Legacy certificates name the host only in the CN; clients today require a SAN.
    if (sans.length === 0 && names.subjectCN) sans = normalizeSans([{ type: 'dns', value: names.subjectCN }]);
    if (sans.length === 0) throw new MintError('upstream certificate names no DNS name or IP address');
    const key = this.issuerPrefix + sanSetKey(sans);
    const upstreamNotAfterMs = names.notAfter?.getTime() ?? Infinity;

    const cached = this.cache.get(key);
    if (cached !== undefined && cached.notAfterMs > now + REFRESH_MARGIN_MS && cached.notAfterMs <= upstreamNotAfterMs) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      this.counters.inc('hits');
      return cached.leaf;
    }
    this.counters.inc('misses');
    const notAfterMs = Math.min(now + this.validityMs, upstreamNotAfterMs, this.issuerNotAfterMs);
    if (notAfterMs <= now) {
      throw new MintError(upstreamNotAfterMs <= now
        ? `upstream certificate expired on ${new Date(upstreamNotAfterMs).toISOString()}`
        : `issuing CA ${this.issuer.x509.subject} expired; renew it`);
    }
    const leaf = this.build(sans, chooseCommonName(names.subjectCN, opts.sni, sans), now, notAfterMs);
    this.cache.delete(key);
    this.cache.set(key, { leaf, notAfterMs: leaf.notAfter.getTime() });
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
      this.counters.inc('evictions');
    }
    return leaf;
  }

  private build(sans: SanEntry[], commonName: string | null, now: number, notAfterMs: number): MintedLeaf {
    // RFC 5280 4.1: version, serial, signature, issuer, validity, subject, SPKI, extensions.
    const tbs = encode(TAG_SEQUENCE, [
      this.versionDer,
      derOf(randomSerial()),
      this.algorithmAndIssuerDer,
      derOf(seq([buildTime(now - CLOCK_SKEW_MS), buildTime(notAfterMs)])),
      derOf(buildName(commonName)),
      this.spkiDer,
      encode(ctx(3), [encode(TAG_SEQUENCE, [
        this.fixedExtensionsDer,
        // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
        derOf(subjectAltNameExt(sans, commonName === null)),
      ])]),
    ]);
    const certDer = signCertificate(tbs, this.signer);
    const certPem = toPem(certDer);
    return {
      certPem,
      certDer,
      keyPem: this.keyPem,
      key: this.leafKey,
      chainPem: this.chainSuffix === '' ? certPem : certPem + this.chainSuffix,
      notAfter: new Date(Math.floor(notAfterMs / 1000) * 1000),
    };
  }
}

/** An upstream certificate object was usually read already by validation; certInfo reuses that. */
function describe(upstream: UpstreamLeaf): { subjectCN?: string; sans: ReadonlyArray<SanInput | SanEntry>; notAfter?: Date } {
  if (!(upstream instanceof X509Certificate) && !Buffer.isBuffer(upstream)) return upstream;
  try {
    const info = upstream instanceof X509Certificate ? certInfo(upstream) : parseCertificate(upstream);
    const sans: SanInput[] = info.sanDns.map((value) => ({ type: 'dns', value }));
    // RFC 5280 4.2.1.6: an iPAddress SAN is 4 or 16 octets; anything else is malformed and not mirrored.
    for (const bytes of info.sanIps) {
      if (bytes.length === 4 || bytes.length === 16) sans.push({ type: 'ip', value: IpAddress.fromBytes(bytes).toString() });
    }
    return { subjectCN: subjectCommonName(info) ?? undefined, sans, notAfter: info.notAfter };
  } catch (e) {
    throw new MintError(`cannot read upstream certificate: ${(e as Error).message}`);
  }
}
