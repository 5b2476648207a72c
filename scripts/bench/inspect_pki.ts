// Certificates of the inspection benchmark, made with the openssl CLI (the
// benchmark runs from dist/, where test/helpers is not compiled):
//   - a test "public" PKI for the origin: root (RSA-2048) → intermediate
//     (P-256) → leaves (P-256, one shared key), served with the intermediate
//     as a real site would. One leaf per name, so every new name is a new
//     upstream certificate and a proxy whose cache is keyed by names must mint.
//   - the Squid pipeline's company CA (ECDSA P-256, like Sightline's default).
// mitmproxy makes its own CA in its confdir; Sightline makes its own on start.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from '../lab/netns';

export const ORIGIN_NAME = 'origin.bench.test';
export const ORIGIN_ROOT_CN = 'Bench Public Root';
export const ORIGIN_INTERMEDIATE_CN = 'Bench Public Intermediate';
export const SQUID_CA_CN = 'Bench Squid Company CA';

export interface OriginPki {
  /** PEM of the origin's root: the trust anchor every proxy validates against. */
  rootCrt: string;
  /** Folder of `<name>.crt` (leaf + intermediate) and the shared `leaf.key`. */
  certDir: string;
  /** Names with a certificate of their own, for first-visit measurements. */
  visitNames: string[];
  /** More such names, visited once before the measured ones (inspect.ts says why). */
  warmNames: string[];
}

// One config for every openssl call; sections chosen with -extensions.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const DAYS = '30';

/** The origin's PKI under `dir`, with `visitCount` extra names hN.bench.test and `warmCount` more wN.bench.test. */
export function makeOriginPki(dir: string, visitCount: number, warmCount = 0): OriginPki {
  mkdirSync(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  const f = (n: string): string => join(dir, n);
  const env = { SAN: 'unused' };
  openssl(['req', '-config', cnf, '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('root.key'), '-out', f('root.crt'),
    '-subj', `/O=Bench Public PKI/CN=${ORIGIN_ROOT_CN}`, '-days', DAYS, '-extensions', 'root'], env);
  openssl(['req', '-config', cnf, '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('int.key'), '-out', f('int.crt'), '-CA', f('root.crt'), '-CAkey', f('root.key'),
    '-subj', `/O=Bench Public PKI/CN=${ORIGIN_INTERMEDIATE_CN}`, '-days', DAYS, '-extensions', 'intermediate'], env);
  const certDir = f('certs');
  mkdirSync(certDir);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(certDir, 'leaf.key')], env);
  const intPem = readFileSync(f('int.crt'), 'utf8');
  const visitNames = Array.from({ length: visitCount }, (_, i) => `h${i}.bench.test`);
  const warmNames = Array.from({ length: warmCount }, (_, i) => `w${i}.bench.test`);
  for (const name of [ORIGIN_NAME, ...visitNames, ...warmNames]) {
    const leaf = join(certDir, `${name}.leaf`);
    openssl(['req', '-config', cnf, '-x509', '-new', '-key', join(certDir, 'leaf.key'), '-out', leaf, '-CA', f('int.crt'), '-CAkey', f('int.key'),
      '-subj', `/CN=${name}`, '-days', DAYS, '-extensions', 'leaf'], { SAN: name });
    writeFileSync(join(certDir, `${name}.crt`), readFileSync(leaf, 'utf8') + intPem);
  }
  return { rootCrt: f('root.crt'), certDir, visitNames, warmNames };
}

/** A company CA for Squid's ssl-bump (certificate and key in one PEM file each). */
export function makeSquidCa(dir: string): { crt: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  const crt = join(dir, 'squid-ca.crt');
  const key = join(dir, 'squid-ca.key');
  openssl(['req', '-config', cnf, '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
    '-subj', `/O=Bench Company/CN=${SQUID_CA_CN}`, '-days', DAYS, '-extensions', 'root'], { SAN: 'unused' });
  return { crt, key };
}

function openssl(args: string[], env: Record<string, string>): void {
  // runOk has no env option; `env` carries the SAN the config reads.
  runOk('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'openssl', ...args]);
}
