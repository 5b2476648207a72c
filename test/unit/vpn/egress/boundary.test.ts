// The concentrator's egress boundary: egress_denied records per user
// (rate-limited, suppressed ones counted), the resolvers it keeps from
// /etc/resolv.conf, the fetcher for AIA/OCSP on a user's behalf, and the
// roaming predicate.
import type { NetworkInterfaceInfo } from 'node:os';
import { EgressBoundary } from '../../../../vpn/egress';
import { DENIAL_RECORDS_BURST, EgressDenials } from '../../../../vpn/egress';
import { defaultConfig, parseConfigText } from '../../../../vpn/config';
import { createLogger } from '../../../../vpn/process';
import { IpAddress, IpCidr, IP_PROTOCOL_UDP } from '../../../../netstack/wire';

type Written = { user: string; peer: string; type: string; fields: Record<string, unknown> };

function sink() {
  const written: Written[] = [];
  return { written, records: { write: (user: string, peer: string, type: string, fields: Record<string, unknown> = {}) => written.push({ user, peer, type, fields }) } };
}

const LOOPBACK = { reason: 'loopback', via: null } as const;

describe('egress_denied records', () => {
  test('a refusal is written with proto, dst, dstPort, reason, path and the IPv6 form', () => {
    const { written, records } = sink();
    const d = new EgressDenials(records, () => 0);
    d.record('alice', 'key-a', 'tunnel', 17, IpAddress.parse('::ffff:127.0.0.1').bytes, 53, { reason: 'loopback', via: 'ipv4_mapped' });
    expect(written).toEqual([
      { user: 'alice', peer: 'key-a', type: 'egress_denied', fields: { proto: 'udp', dst: '::ffff:127.0.0.1', dstPort: 53, reason: 'loopback', via: 'ipv4_mapped', path: 'tunnel' } },
    ]);
    expect(d.counters.denied_loopback).toBe(1);
  });

  test('a flood is rate-limited per user; the next record says how many were suppressed', () => {
    const { written, records } = sink();
    let now = 0;
    const d = new EgressDenials(records, () => now);
    for (let i = 0; i < 1000; i++) d.record('alice', 'k', 'tunnel', 6, '127.0.0.1', 80, LOOPBACK);
    d.record('bob', 'k2', 'tunnel', 6, '127.0.0.1', 80, LOOPBACK);
    expect(written.filter((w) => w.user === 'alice')).toHaveLength(DENIAL_RECORDS_BURST);
    expect(written.filter((w) => w.user === 'bob')).toHaveLength(1);
    expect(d.counters.denied_loopback).toBe(1001);
    expect(d.counters.records_suppressed).toBe(1000 - DENIAL_RECORDS_BURST);
    now = 1000;
    d.record('alice', 'k', 'tunnel', 6, '127.0.0.1', 80, LOOPBACK);
    expect(written[written.length - 1].fields.suppressed).toBe(1000 - DENIAL_RECORDS_BURST);
  });

  test('protocols without ports are written with dstPort null', () => {
    const { written, records } = sink();
    new EgressDenials(records, () => 0).record('alice', 'k', 'tunnel', 1, '169.254.169.254', -1, { reason: 'link_local', via: null });
    expect(written[0].fields).toMatchObject({ proto: 'icmp', dstPort: null });
  });
});

describe('EgressBoundary', () => {
  const iface = (address: string, cidr: string): NetworkInterfaceInfo =>
    ({ address, cidr, netmask: '', family: address.includes(':') ? 'IPv6' : 'IPv4', mac: '00:00:00:00:00:00', internal: false, scopeid: 0 }) as NetworkInterfaceInfo;
  const boundaries: EgressBoundary[] = [];

  function boundary(configText = '') {
    const { written, records } = sink();
    const warnings: string[] = [];
    const log = createLogger('warn', { write: (line: string) => warnings.push(line) });
    const b = new EgressBoundary({
      config: configText ? parseConfigText(configText, 'f') : defaultConfig(),
      tunnelAddresses: [IpAddress.parse('10.77.0.1')],
      tunnelPools: [IpCidr.parse('10.77.0.0/16')],
      records,
      log,
      readInterfaces: () => ({ lo: [iface('127.0.0.1', '127.0.0.1/8')], eth0: [iface('192.0.2.5', '192.0.2.5/24')] }),
    });
    boundaries.push(b);
    return { b, written, warnings };
  }

  afterAll(() => boundaries.forEach((b) => b.stop()));

  test('a loopback resolver from resolv.conf is dropped with a warning naming dns.upstream and egress.allow', () => {
    const { b, warnings } = boundary();
    const kept = b.permittedResolvers([{ host: '127.0.0.53', port: 53 }, { host: '10.0.0.53', port: 53 }]);
    expect(kept).toEqual([{ host: '10.0.0.53', port: 53 }]);
    expect(warnings.join('')).toMatch(/127\.0\.0\.53 is loopback.*dns\.upstream.*add 127\.0\.0\.53\/32 to egress\.allow/);
  });

  test('egress.allow keeps such a resolver', () => {
    const { b } = boundary('egress:\n  allow: ["127.0.0.53/32"]\n');
    expect(b.permittedResolvers([{ host: '127.0.0.53', port: 53 }])).toEqual([{ host: '127.0.0.53', port: 53 }]);
  });

  test("a fetch for a user's flow to cloud metadata is refused and logged for that user", async () => {
    const { b, written } = boundary();
    const res = await b.fetcherFor('alice', 'key-a')({ url: 'http://169.254.169.254/latest/meta-data/', method: 'GET', timeoutMs: 1000, maxBytes: 100 });
    expect(res).toMatchObject({ ok: false, error: 'egress_denied' });
    expect(written).toEqual([
      { user: 'alice', peer: 'key-a', type: 'egress_denied', fields: { proto: 'tcp', dst: '169.254.169.254', dstPort: 80, reason: 'link_local', path: 'fetch' } },
    ]);
  });

  test('a certificate fetch shared by all users (a bypass probe) is refused and counted, in no user log', async () => {
    const { b, written, warnings } = boundary();
    const res = await b.sharedFetcher({ url: 'http://127.0.0.1:9/ocsp', method: 'POST', timeoutMs: 1000, maxBytes: 100 });
    expect(res).toMatchObject({ ok: false, error: 'egress_denied' });
    expect(written).toEqual([]);
    expect(b.counters.denied_loopback).toBe(1);
    expect(warnings).toEqual([]);
  });

  test('the endpoint clients are given counts as the host and its listener when written as an address (a hairpinning NAT)', () => {
    const { b } = boundary('endpoint: "203.0.113.9:51820"\n');
    expect(b.guard.check(IpAddress.parse('203.0.113.9'), IP_PROTOCOL_UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(b.acceptsEndpoint({ address: '203.0.113.9', port: 40000 })).toBe(false);
    const named = boundary('endpoint: "vpn.example.com:51820"\n').b;
    expect(named.guard.check(IpAddress.parse('203.0.113.9'), IP_PROTOCOL_UDP, 51820)).toBeNull();
  });

  test('roaming is refused to loopback and host addresses, in any form, and allowed elsewhere', () => {
    const { b } = boundary('egress:\n  allow: ["0.0.0.0/0"]\n');
    expect(b.acceptsEndpoint({ address: '127.0.0.1', port: 51820 })).toBe(false);
    expect(b.acceptsEndpoint({ address: '::ffff:192.0.2.5', port: 40000 })).toBe(false);
    expect(b.acceptsEndpoint({ address: '198.51.100.7', port: 40000 })).toBe(true);
  });

  test('the WireGuard listener stays refused whatever egress.allow says', () => {
    const { b } = boundary('listenPort: 51999\negress:\n  allow: ["0.0.0.0/0"]\n');
    expect(b.guard.check(IpAddress.parse('192.0.2.5'), 17, 51999)).toEqual({ reason: 'wireguard_listener', via: null });
  });
});
