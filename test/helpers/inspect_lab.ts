// The origin side of the TLS-inspection end-to-end tests: a test "public" PKI
// with one site per good and bad case (issue 5), served by
// scripts/lab/tls_origin.js in the origin namespace, an AIA caIssuers HTTP
// port, a real `openssl ocsp` responder for the revocation cases, and a
// TLS 1.0-only server on a second origin address.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { sleep, waitFor, type Namespace } from '../../scripts/lab/netns';
import type { HttpsListener, TlsOriginConfig } from '../../scripts/lab/tls_origin';
import { ORIGIN_V4, ROOT, type Client, type Topology } from './topology';
import { daysFromNow, issueCert, makeIntermediate, makeLeaf, makeRoot, type CertOptions, type TestCert } from './pki';

export const TLS_ORIGIN = join(ROOT, 'dist', 'scripts', 'lab', 'tls_origin.js');
/** A second address on the origin's link, for the legacy TLS 1.0 server. */
export const LEGACY_V4 = '10.202.0.3';
export const AIA_PORT = 8080;
export const OCSP_PORT = 8081;

/** Upstream verdicts the concentrator must name (mitm/upstream ValidationFailure). */
export type RejectReason =
  | 'expired' | 'not_yet_valid' | 'self_signed' | 'untrusted_root' | 'hostname_mismatch' | 'incomplete_chain'
  | 'weak_signature_sha1' | 'weak_rsa_key' | 'missing_server_auth_eku' | 'revoked' | 'protocol_too_old';

export interface Site {
  /** What the test case is called. */
  name: string;
  /** The name the client asks for (SNI and URL host). */
  host: string;
  /** Where it is served. */
  address: string;
}

export interface BadSite extends Site {
  reason: RejectReason;
  /** False when no upstream TLS session exists (nothing the untrusted CA could mirror). */
  upstreamSession: boolean;
}

export interface InspectOrigins {
  /** The test root the concentrator trusts (tls.upstreamCaFile), and the client trusts only for bypassed flows. */
  rootFile: string;
  /** The intermediate that only the AIA caIssuers URL provides. */
  aiaPath: string;
  config: TlsOriginConfig;
  /** index.txt + CA files for the OCSP responder (the revoked leaf's issuer). */
  ocsp: { index: string; ca: string; key: string };
}

const site = (name: string, host: string, address = ORIGIN_V4): Site => ({ name, host, address });
const bad = (name: string, host: string, reason: RejectReason, address = ORIGIN_V4): BadSite =>
  ({ name, host, address, reason, upstreamSession: reason !== 'protocol_too_old' });

/** Origins every browser opens: each must load through inspection. */
export const GOOD_SITES: readonly Site[] = [
  site('RSA-2048', 'rsa2048.test'),
  site('RSA-4096', 'rsa4096.test'),
  site('ECDSA P-256, OCSP good', 'p256.test'),
  site('ECDSA P-384', 'p384.test'),
  site('SAN-only, no CN', 'sanonly.test'),
  site('wildcard *.wild.test', 'a.wild.test'),
  site('incomplete chain completed via AIA caIssuers', 'aia.test'),
];

/** Origins that must never reach the client under a certificate it trusts. */
export const BAD_SITES: readonly BadSite[] = [
  bad('expired', 'expired.test', 'expired'),
  bad('not yet valid', 'notyet.test', 'not_yet_valid'),
  bad('self-signed', 'selfsigned.test', 'self_signed'),
  bad('untrusted root', 'untrusted.test', 'untrusted_root'),
  bad('wrong host', 'wronghost.test', 'hostname_mismatch'),
  bad('incomplete chain, no AIA', 'nochain.test', 'incomplete_chain'),
  bad('SHA-1-signed leaf', 'sha1.test', 'weak_signature_sha1'),
  bad('RSA-1024 leaf', 'rsa1024.test', 'weak_rsa_key'),
  bad('missing serverAuth EKU', 'clientauth.test', 'missing_server_auth_eku'),
  bad('revoked (OCSP)', 'revoked.test', 'revoked'),
  bad('TLS 1.0-only server', 'tls10.test', 'protocol_too_old', LEGACY_V4),
];

/** Good sites for traffic tests: secrets and WebSocket (app), pinned-client detection (pinned). */
export const APP_SITE = site('app', 'app.test');
export const PINNED_SITE = site('pinned', 'pinned.test');
/** Served on the main listener too; a test that wants client certificates demanded serves it from its own listener (clientCaFile). */
export const MTLS_HOST = 'mtls.test';

/** openssl's index.txt time: YYMMDDHHMMSSZ. */
const indexTime = (d: Date): string => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');

function indexLine(cert: TestCert, revoked: boolean): string {
  const revokedAt = revoked ? `${indexTime(daysFromNow(-1))},keyCompromise` : '';
  return [revoked ? 'R' : 'V', indexTime(new Date(cert.cert.validTo)), revokedAt, cert.serialHex, 'unknown', cert.subjectLine].join('\t') + '\n';
}

/** Generates every site's certificate chain (as served) and the origin's config under `dir`. */
export function makeInspectOrigins(dir: string): InspectOrigins {
  mkdirSync(dir, { recursive: true });
  const root = makeRoot({ cn: 'Inspect Test Root' });
  const inter = makeIntermediate(root, { cn: 'Inspect Test Intermediate' });
  const aiaInter = makeIntermediate(root, { cn: 'Inspect Test AIA Intermediate' });
  const otherRoot = makeRoot({ cn: 'Unknown Root', o: 'Nobody Trusts Me' });
  const ocspUrl = `http://${ORIGIN_V4}:${OCSP_PORT}/`;
  const aiaPath = '/aia-intermediate.crt';
  const leaf = (host: string, opts: Omit<CertOptions, 'issuer'> = {}, issuer = inter): TestCert => makeLeaf(issuer, { dns: [host], ...opts });
  const p256 = leaf('p256.test', { ocspUrl });
  const revoked = leaf('revoked.test', { ocspUrl });

  // host → the chain exactly as the server sends it.
  const chains: Record<string, TestCert[]> = {
    'rsa2048.test': [leaf('rsa2048.test', { key: 'rsa2048' }), inter],
    'rsa4096.test': [leaf('rsa4096.test', { key: 'rsa4096' }), inter],
    'p256.test': [p256, inter],
    'p384.test': [leaf('p384.test', { key: 'p384' }), inter],
    'sanonly.test': [leaf('sanonly.test', { cn: undefined }), inter],
    '*.wild.test': [leaf('*.wild.test'), inter],
    'aia.test': [leaf('aia.test', { caIssuersUrl: `http://${ORIGIN_V4}:${AIA_PORT}${aiaPath}` }, aiaInter)],
    'app.test': [leaf('app.test'), inter],
    'pinned.test': [leaf('pinned.test'), inter],
    'mtls.test': [leaf('mtls.test'), inter],
    'expired.test': [leaf('expired.test', { notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) }), inter],
    'notyet.test': [leaf('notyet.test', { notBefore: daysFromNow(1), notAfter: daysFromNow(30) }), inter],
    'selfsigned.test': [issueCert({ cn: 'selfsigned.test', dns: ['selfsigned.test'] })],
    // The unknown root is sent along, so the verdict is "untrusted root", not "incomplete chain".
    'untrusted.test': [leaf('untrusted.test', {}, otherRoot), otherRoot],
    'wronghost.test': [leaf('other.test'), inter],
    'nochain.test': [leaf('nochain.test')],
    'sha1.test': [leaf('sha1.test', { hash: 'sha1' }), inter],
    'rsa1024.test': [leaf('rsa1024.test', { key: 'rsa1024' }), inter],
    'clientauth.test': [leaf('clientauth.test', { eku: ['clientAuth'] }), inter],
    'revoked.test': [revoked, inter],
    'tls10.test': [leaf('tls10.test'), inter],
  };
  const sites: Record<string, HttpsListener['sites']> = { [ORIGIN_V4]: {}, [LEGACY_V4]: {} };
  for (const [host, chain] of Object.entries(chains)) {
    const base = join(dir, host.replace(/\*/g, '_'));
    writeFileSync(`${base}.crt`, chain.map((c) => c.pem).join(''));
    writeFileSync(`${base}.key`, chain[0].keyPem, { mode: 0o600 });
    sites[host === 'tls10.test' ? LEGACY_V4 : ORIGIN_V4][host] = { certFile: `${base}.crt`, keyFile: `${base}.key` };
  }

  const rootFile = join(dir, 'test-root.pem');
  writeFileSync(rootFile, root.pem);
  const aiaFile = join(dir, 'aia-intermediate.der');
  writeFileSync(aiaFile, aiaInter.der);
  const ocsp = { index: join(dir, 'ocsp-index.txt'), ca: join(dir, 'ocsp-ca.pem'), key: join(dir, 'ocsp-ca.key') };
  writeFileSync(ocsp.index, indexLine(p256, false) + indexLine(revoked, true));
  writeFileSync(`${ocsp.index}.attr`, 'unique_subject = no\n');
  writeFileSync(ocsp.ca, inter.pem);
  writeFileSync(ocsp.key, inter.keyPem, { mode: 0o600 });
  const config: TlsOriginConfig = {
    https: [
      { address: ORIGIN_V4, port: 443, sites: sites[ORIGIN_V4] },
      { address: LEGACY_V4, port: 443, sites: sites[LEGACY_V4], tlsVersion: 'TLSv1' },
    ],
    http: [{ address: ORIGIN_V4, port: AIA_PORT, files: { [aiaPath]: aiaFile } }],
  };
  return { rootFile, aiaPath, config, ocsp };
}

/** A running tls_origin: its printed request lines. */
export interface OriginProcess {
  child: ChildProcess;
  /** The request lines printed so far; async because spawnSync'd clients keep the event loop from reading the pipe. */
  requests(): Promise<Array<Record<string, unknown>>>;
}

/**
 * Adds the legacy address, starts the OCSP responder and tls_origin inside
 * the origin namespace, and waits until both listen. Processes belong to
 * the topology's lab, so Topology.cleanup stops them.
 */
export async function startInspectOrigins(t: Topology, o: InspectOrigins, extra: Partial<TlsOriginConfig> = {}): Promise<OriginProcess> {
  const veth = /^\d+:\s+([^@:]+)/m.exec(t.origin.execOk('ip', ['-o', 'link', 'show', 'type', 'veth']))?.[1];
  if (!veth) throw new Error('origin namespace has no veth link');
  const config: TlsOriginConfig = { ...o.config, ...extra };
  // Every listener address other than the link's own is added to it (LEGACY_V4, and any in `extra`).
  const listeners = [...config.https, ...config.http, ...(config.banner ?? [])];
  for (const address of new Set(listeners.map((l) => l.address).filter((a) => a !== ORIGIN_V4))) {
    t.origin.execOk('ip', ['addr', 'add', `${address}/24`, 'dev', veth]);
  }
  await startOcsp(t.origin, o);
  const file = join(t.dataDir, 'tls-origin.json');
  writeFileSync(file, JSON.stringify(config));
  const child = t.origin.spawn('node', [TLS_ORIGIN, file]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  await waitFor('tls_origin to listen', () => (out.includes('ready\n') ? true : child.exitCode !== null ? fail(`tls_origin exited: ${err}`) : undefined), 15_000);
  return {
    child,
    requests: async () => {
      await sleep(200);
      return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

export interface InspectRig {
  origins: InspectOrigins;
  origin: OriginProcess;
  /** The company CA as `sightline ca export` gives it: the only CA the employee trusts. */
  companyCa: string;
  alice: Client;
}

/**
 * The whole inspection lab on `t`: certificates, concentrator config (the
 * test root as tls.upstreamCaFile, plus `tlsLines` under `tls:`, then
 * `extraConfig` as top-level YAML), origins, the running concentrator, the
 * exported company CA and one employee. `originExtra` (or what it returns
 * for the generated origins) is merged into the origin's config (e.g.
 * setCookie, extra listeners).
 */
export async function setUpInspection(
  t: Topology, tlsLines: string[] = [], originExtra: Partial<TlsOriginConfig> | ((o: InspectOrigins) => Partial<TlsOriginConfig>) = {}, extraConfig = '',
): Promise<InspectRig> {
  const origins = makeInspectOrigins(join(t.dataDir, 'pki'));
  t.setup(['tls:', `  upstreamCaFile: ${origins.rootFile}`, ...tlsLines.map((l) => `  ${l}`), extraConfig].join('\n'));
  const origin = await startInspectOrigins(t, origins, typeof originExtra === 'function' ? originExtra(origins) : originExtra);
  await t.startConcentrator();
  const exported = t.sightline(['ca', 'export']);
  if (exported.code !== 0) throw new Error(`sightline ca export failed: ${exported.stderr}`);
  const companyCa = join(t.dataDir, 'company-ca.pem');
  writeFileSync(companyCa, exported.stdout);
  const alice = await t.client('alice');
  return { origins, origin, companyCa, alice };
}

async function startOcsp(ns: Namespace, o: InspectOrigins): Promise<void> {
  const args = ['ocsp', '-index', o.ocsp.index, '-port', String(OCSP_PORT), '-rsigner', o.ocsp.ca, '-rkey', o.ocsp.key, '-CA', o.ocsp.ca, '-ndays', '1'];
  const child = ns.spawn('openssl', args);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor('openssl ocsp to listen', () => (/ACCEPT/.test(out) ? true : child.exitCode !== null ? fail(`openssl ocsp exited: ${out}`) : undefined), 10_000);
}

function fail(msg: string): never {
  throw new Error(msg);
}
