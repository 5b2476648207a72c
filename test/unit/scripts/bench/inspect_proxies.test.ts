// The comparison pipelines must be what DESIGN.md names — Squid ssl-bump in
// intercept mode validating upstream, mitmproxy in transparent mode
// validating upstream, both behind an nftables redirect of 443 from the
// tunnel — or the ratios compare Sightline with something weaker.
import { MITMPROXY_PORT, SQUID_PORT, mitmdumpArgs, redirectRules, squidConfig } from '../../../../scripts/bench/inspect_proxies';

const files = { dir: '/tmp/sq', caCrt: '/tmp/ca/squid-ca.crt', caKey: '/tmp/ca/squid-ca.key', originRoot: '/tmp/pki/root.crt', hostsFile: '/tmp/sq/hosts' };

describe('squidConfig', () => {
  const conf = squidConfig(files).split('\n');

  test('intercepts and bumps on the redirected port with certificates minted from the company CA', () => {
    expect(conf).toContain(`https_port ${SQUID_PORT} intercept ssl-bump tls-cert=/tmp/ca/squid-ca.crt tls-key=/tmp/ca/squid-ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=16MB`);
    expect(conf.some((l) => l.startsWith('sslcrtd_program /usr/lib/squid/security_file_certgen -s /tmp/sq/ssl_db'))).toBe(true);
  });

  test('peeks at step 1 for the SNI, then bumps everything (no splice that would skip the work)', () => {
    expect(conf).toEqual(expect.arrayContaining(['acl step1 at_step SslBump1', 'ssl_bump peek step1', 'ssl_bump bump all']));
    expect(conf.some((l) => l.includes('splice'))).toBe(false);
  });

  test('validates the upstream against the test root and never waives certificate errors', () => {
    expect(conf).toContain('tls_outgoing_options cafile=/tmp/pki/root.crt');
    expect(conf.some((l) => l.startsWith('sslproxy_cert_error') || l.includes('DONT_VERIFY'))).toBe(false);
  });

  test('keeps its pid file, logs and cache under its own folder', () => {
    expect(conf).toEqual(expect.arrayContaining(['pid_filename /tmp/sq/squid.pid', 'cache_log /tmp/sq/cache.log', 'access_log none']));
  });
});

describe('mitmdumpArgs', () => {
  const args = mitmdumpArgs('/tmp/mc', '/tmp/pki/root.crt');

  test('runs in transparent mode on its own port with its CA in the given confdir', () => {
    expect(args.slice(0, 5)).toEqual(['--mode', 'transparent', '--showhost', '--listen-port', String(MITMPROXY_PORT)]);
    expect(args).toContain('confdir=/tmp/mc');
  });

  test('validates the upstream against the test root and does not turn verification off', () => {
    expect(args).toContain('ssl_verify_upstream_trusted_ca=/tmp/pki/root.crt');
    expect(args.some((a) => a.includes('ssl_insecure') || a === '-k')).toBe(false);
  });
});

describe('redirectRules', () => {
  test('redirects only TCP 443 arriving on the tunnel interface', () => {
    const rules = redirectRules('wgs1', 3129);
    expect(rules).toContain('type nat hook prerouting priority dstnat;');
    expect(rules).toContain('iifname "wgs1" tcp dport 443 redirect to :3129');
  });
});
