// The two pipelines a company would otherwise assemble, on the anchor gateway
// of tunnel_topology.ts (wireguard-go server + kernel forwarding): an nftables
// redirect of TCP port 443 arriving from the tunnel to a local interception
// proxy, Squid ssl-bump in intercept mode or mitmproxy in transparent mode.
// Configs are pure functions (pinned by tests and printed in reports); the
// processes run as root inside the namespace from a temp dir and are ended by
// PID like every other process of the lab.
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk, sleep, type Namespace } from '../lab/netns';
import { stopChild, type Started } from './tunnel_topology';

export const SQUID_PORT = 3129;
export const MITMPROXY_PORT = 8081;
const SQUID_FORWARD_PORT = 3128;
const CERTGEN = '/usr/lib/squid/security_file_certgen';
const REDIRECT_TABLE = 'bench_redirect';

export interface SquidFiles {
  dir: string;
  caCrt: string;
  caKey: string;
  originRoot: string;
  hostsFile: string;
}

/**
 * squid.conf for intercepted HTTPS: peek at the ClientHello for the SNI
 * (step 1), then bump; leaves minted by security_file_certgen and cached on
 * disk and in memory; upstream validated against the origin's test root.
 * No caching of responses and no access log (a log line per request would
 * measure logging). read_ahead_gap is raised from its 16 KB default: with
 * the default Squid stalls the upstream read every 16 KB and the bulk row
 * would measure that setting rather than the design.
 */
export function squidConfig(f: SquidFiles): string {
  return [
    `http_port 127.0.0.1:${SQUID_FORWARD_PORT}`,
    `https_port ${SQUID_PORT} intercept ssl-bump tls-cert=${f.caCrt} tls-key=${f.caKey} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB`,
    `sslcrtd_program ${CERTGEN} -s ${join(f.dir, 'ssl_db')} -M 16MB`,
    'sslcrtd_children 8 startup=2 idle=1',
    'acl step1 at_step SslBump1',
    'ssl_bump peek step1',
    'ssl_bump bump all',
    `tls_outgoing_options cafile=${f.originRoot}`,
    'http_access allow all',
    'cache deny all',
    'cache_mem 0 MB',
    'read_ahead_gap 1 MB',
    'access_log none',
    `cache_log ${join(f.dir, 'cache.log')}`,
    'debug_options ALL,1',
    `pid_filename ${join(f.dir, 'squid.pid')}`,
    `coredump_dir ${f.dir}`,
    // Names resolve from a hosts file of the benchmark's names; no DNS
    // server is reachable from the namespace, so a query would only wait.
    `hosts_file ${f.hostsFile}`,
    'dns_nameservers 127.0.0.1',
    'shutdown_lifetime 0 seconds',
    '',
  ].join('\n');
}

/** mitmdump's command line in transparent mode, validating against the origin's root. */
export function mitmdumpArgs(confdir: string, originRoot: string): string[] {
  return [
    '--mode', 'transparent', '--showhost', '--listen-port', String(MITMPROXY_PORT),
    '--set', `confdir=${confdir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${originRoot}`,
    // Stream bodies instead of buffering each response whole (200 MB) in memory.
    '--set', 'stream_large_bodies=1m',
    // No per-flow output: the analogue of Squid's `access_log none`.
    '--set', 'flow_detail=0', '-q',
  ];
}

/** nftables rules sending TCP 443 that arrives from the tunnel interface to a local port. */
export function redirectRules(tunnelIf: string, toPort: number): string {
  return `table ip ${REDIRECT_TABLE} {\n chain pre {\n  type nat hook prerouting priority dstnat;\n  iifname "${tunnelIf}" tcp dport 443 redirect to :${toPort}\n }\n}\n`;
}

/** Points the gateway's 443 redirect at `toPort`, replacing any earlier one. */
export function setRedirect(gw: Namespace, tunnelIf: string, toPort: number): void {
  gw.exec('nft', ['delete', 'table', 'ip', REDIRECT_TABLE]);
  gw.execOk('nft', ['-f', '-'], { input: redirectRules(tunnelIf, toPort) });
}

export function clearRedirect(gw: Namespace): void {
  gw.exec('nft', ['delete', 'table', 'ip', REDIRECT_TABLE]);
}

/**
 * Squid in the gateway namespace, foreground (-N), its files in `dir`. Squid
 * drops root for the `proxy` user, so its folder and certificate database
 * belong to that user; the CA key stays root's (read before the drop).
 */
export async function startSquid(gw: Namespace, f: SquidFiles): Promise<Started> {
  mkdirSync(f.dir, { recursive: true, mode: 0o755 });
  const uid = Number(runOk('id', ['-u', 'proxy']).trim());
  const gid = Number(runOk('id', ['-g', 'proxy']).trim());
  chownSync(f.dir, uid, gid);
  const conf = join(f.dir, 'squid.conf');
  writeFileSync(conf, squidConfig(f));
  runOk('runuser', ['-u', 'proxy', '--', CERTGEN, '-c', '-s', join(f.dir, 'ssl_db'), '-M', '16MB']);
  gw.execOk('squid', ['-k', 'parse', '-f', conf]);
  return startListening(gw, 'squid', ['-N', '-f', conf], SQUID_PORT, 15_000, () => `cache.log: ${tail(join(f.dir, 'cache.log'))}`);
}

/** mitmdump in the gateway namespace; returns it and the CA it made in `confdir`. */
export async function startMitmproxy(gw: Namespace, confdir: string, originRoot: string): Promise<{ proc: Started; caCrt: string }> {
  mkdirSync(confdir, { recursive: true });
  const proc = await startListening(gw, 'mitmdump', mitmdumpArgs(confdir, originRoot), MITMPROXY_PORT, 20_000, () => '');
  return { proc, caCrt: join(confdir, 'mitmproxy-ca-cert.pem') };
}

/** Spawns a server in the namespace and waits until its port listens (or it exits). */
async function startListening(ns: Namespace, cmd: string, args: string[], port: number, timeoutMs: number, context: () => string): Promise<Started> {
  const child = ns.spawn(cmd, args);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-65536)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-65536)));
  const deadline = Date.now() + timeoutMs;
  while (ns.exec('ss', ['-Hltn', `sport = :${port}`]).stdout.trim() === '') {
    const why = child.exitCode !== null ? `exited with ${child.exitCode}` : Date.now() > deadline ? `did not listen on ${port} within ${timeoutMs} ms` : null;
    if (why !== null) {
      await stopChild(child);
      throw new Error(`${cmd} ${why}: ${out.trim().slice(-300)} ${context()}`.trim());
    }
    await sleep(100);
  }
  return { child, output: () => out };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(none)';
  }
}
