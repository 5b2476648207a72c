// The egress guard: what a tunnel user may make the concentrator send to.
// Each refusal reason, each IPv6 form that reaches an IPv4 address, and the
// precedence of the fixed refusals, egress.deny and egress.allow.
import { EgressGuard, describeVerdict, type EgressGuardOptions } from '../../../../netstack/egress/guard';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_PROC_TABLE_BYTES, hostInterfaceCidrs, kernelLocalCidrs, parseFibTrieLocal, parseIfInet6, readProcCapped, watchHostAddresses,
} from '../../../../netstack/egress/host_addresses';
import { IpAddress, IpCidr } from '../../../../netstack/wire';
import type { NetworkInterfaceInfo } from 'node:os';

const TCP = 6;
const UDP = 17;
const cidrs = (...t: string[]) => t.map((s) => IpCidr.parse(s));

function guard(extra: Partial<EgressGuardOptions> = {}): EgressGuard {
  return new EgressGuard({
    tunnelAddresses: [IpAddress.parse('10.77.0.1'), IpAddress.parse('fd77::1')],
    tunnelPools: cidrs('10.77.0.0/16', 'fd77::/64'),
    listener: { address: null, port: 51820 },
    hostInterfaces: cidrs('127.0.0.1/8', '::1/128', '192.0.2.5/24', '2001:db8:5::5/64', 'fe80::5/64', '198.51.100.7/31'),
    ...extra,
  });
}

function verdict(g: EgressGuard, dst: string, proto = TCP, port = 80) {
  return g.check(IpAddress.parse(dst), proto, port);
}

describe('EgressGuard: built-in refusals', () => {
  const g = guard();
  test.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['192.0.2.5', 'host_address'],
    ['2001:db8:5::5', 'host_address'],
    ['10.77.0.1', 'tunnel_address'],
    ['fd77::1', 'tunnel_address'],
    ['10.77.3.4', 'peer_to_peer'],
    ['fd77::42', 'peer_to_peer'],
    ['169.254.169.254', 'link_local'],
    ['fe80::1', 'link_local'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::fb', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.255', 'broadcast'],
    ['fd00:ec2::254', 'metadata'],
    ['fd20:ce::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
  ])('%s is refused as %s', (dst, reason) => {
    expect(verdict(g, dst)).toEqual({ reason, via: null });
  });

  test('a metadata service is refused in its IPv6 forms too (NAT64), and egress.allow lifts it like link-local', () => {
    expect(verdict(g, '64:ff9b::6464:64c8')).toEqual({ reason: 'metadata', via: 'nat64' });
    expect(verdict(guard({ allow: cidrs('168.63.129.16/32') }), '168.63.129.16')).toBeNull();
  });

  test.each(['10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', 'fd00::1', 'fd00:ec2::253', 'fc12::1', '8.8.8.8', '2001:4860::8888', '192.0.2.6', '198.51.100.6'])(
    'private and public destinations stay reachable: %s',
    (dst) => {
      expect(verdict(g, dst)).toBeNull();
    },
  );

  test('a /31 has no broadcast address (RFC 3021): its other end is an ordinary neighbour', () => {
    expect(verdict(g, '198.51.100.6')).toBeNull();
    expect(verdict(g, '198.51.100.7')).toEqual({ reason: 'host_address', via: null });
  });

  test('the public endpoint no interface holds (1:1 NAT that hairpins) is the host and the listener too, whether or not the listener binds one address', () => {
    const pub = [IpAddress.parse('203.0.113.9')];
    for (const listener of [{ address: null, port: 51820 }, { address: IpAddress.parse('192.0.2.5'), port: 51820 }]) {
      const withPublic = guard({ publicAddresses: pub, listener });
      expect(verdict(withPublic, '203.0.113.9', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
      expect(verdict(withPublic, '203.0.113.9', TCP, 22)).toEqual({ reason: 'host_address', via: null });
      expect(verdict(withPublic, '::ffff:203.0.113.9', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: 'ipv4_mapped' });
      expect(withPublic.isSelf(pub[0])).toBe(true);
      // Re-reading the interfaces keeps it.
      withPublic.setHostInterfaces(cidrs('192.0.2.5/24'));
      expect(verdict(withPublic, '203.0.113.9', TCP, 22)).toEqual({ reason: 'host_address', via: null });
    }
    expect(verdict(guard(), '203.0.113.9', UDP, 51820)).toBeNull();
  });

  test('the WireGuard listener is refused for UDP on its port only', () => {
    expect(verdict(g, '192.0.2.5', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(verdict(g, '127.0.0.1', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(verdict(g, '192.0.2.5', UDP, 53)).toEqual({ reason: 'host_address', via: null });
    expect(verdict(g, '192.0.2.5', TCP, 51820)).toEqual({ reason: 'host_address', via: null });
  });

  test('a listener bound to one address is that address only', () => {
    const one = guard({ listener: { address: IpAddress.parse('192.0.2.5'), port: 51820 }, allow: cidrs('0.0.0.0/0') });
    expect(verdict(one, '192.0.2.5', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(verdict(one, '127.0.0.1', UDP, 51820)).toBeNull();
  });

  test('describeVerdict names the address, the reason and the form', () => {
    expect(describeVerdict({ reason: 'loopback', via: null }, '127.0.0.1')).toBe('127.0.0.1 is loopback');
    expect(describeVerdict({ reason: 'loopback', via: 'nat64' }, '64:ff9b::7f00:1')).toBe('64:ff9b::7f00:1 is loopback (nat64)');
  });
});

describe('EgressGuard: IPv6 forms of IPv4 refusals get the same reason', () => {
  const g = guard();
  const ipv4Refusals: Array<[string, string, string]> = [
    ['127.0.0.1', '7f00:1', 'loopback'],
    ['0.0.0.0', '0:0', 'unspecified'],
    ['192.0.2.5', 'c000:205', 'host_address'],
    ['10.77.0.1', 'a4d:1', 'tunnel_address'],
    ['10.77.0.9', 'a4d:9', 'peer_to_peer'],
    ['169.254.169.254', 'a9fe:a9fe', 'link_local'],
    ['224.0.0.251', 'e000:fb', 'multicast'],
    ['255.255.255.255', 'ffff:ffff', 'broadcast'],
    ['192.0.2.255', 'c000:2ff', 'broadcast'],
  ];

  test.each(ipv4Refusals)('IPv4-mapped ::ffff:%s is %s', (v4, _hex, reason) => {
    expect(verdict(g, `::ffff:${v4}`)).toEqual({ reason, via: 'ipv4_mapped' });
  });

  test.each(ipv4Refusals.filter(([v4]) => v4 !== '0.0.0.0'))('IPv4-compatible ::%s is %s', (v4, _hex, reason) => {
    expect(verdict(g, `::${v4}`)).toEqual({ reason, via: 'ipv4_compatible' });
  });

  test.each(ipv4Refusals)('NAT64 64:ff9b::%s is %s', (_v4, hex, reason) => {
    expect(verdict(g, `64:ff9b::${hex}`)).toEqual({ reason, via: 'nat64' });
  });

  test.each(ipv4Refusals.filter(([v4]) => !v4.startsWith('0.')))('local-use NAT64 64:ff9b:1::%s (/96) is %s', (_v4, hex, reason) => {
    expect(verdict(g, `64:ff9b:1::${hex}`)).toEqual({ reason, via: 'nat64_local' });
  });

  test('local-use NAT64 is read at every RFC 6052 prefix length: /48, /56 and /64', () => {
    // 127.0.0.1 embedded at /48 (bits 48-63, then 72-87), /56 (56-63, 72-95) and /64 (72-103).
    expect(verdict(g, '64:ff9b:1:7f00:0:100::')).toEqual({ reason: 'loopback', via: 'nat64_local' });
    expect(verdict(g, '64:ff9b:1:7f:0:1::')).toEqual({ reason: 'loopback', via: 'nat64_local' });
    expect(verdict(g, '64:ff9b:1:0:7f:0:100:0')).toEqual({ reason: 'loopback', via: 'nat64_local' });
  });

  test('NAT64 forms of public addresses stay reachable', () => {
    expect(verdict(g, '64:ff9b::808:808')).toBeNull();
    expect(verdict(g, '64:ff9b:1::808:808')).toBeNull();
    expect(verdict(g, '::ffff:8.8.8.8')).toBeNull();
  });

  test(':: and ::1 are unspecified and loopback themselves, not IPv4-compatible forms', () => {
    expect(verdict(g, '::')).toEqual({ reason: 'unspecified', via: null });
    expect(verdict(g, '::1')).toEqual({ reason: 'loopback', via: null });
    expect(verdict(g, '::2')).toEqual({ reason: 'unspecified', via: 'ipv4_compatible' });
  });

  test('the WireGuard listener through a mapped form is still the listener', () => {
    expect(verdict(g, '::ffff:127.0.0.1', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: 'ipv4_mapped' });
  });

  test('checkBytes reads the destination in place from a packet buffer', () => {
    const packet = Buffer.alloc(40);
    IpAddress.parse('::ffff:169.254.169.254').bytes.copy(packet, 24);
    expect(g.checkBytes(packet, 24, 6, TCP, 80)).toEqual({ reason: 'link_local', via: 'ipv4_mapped' });
    expect(g.checkBytes(packet, 24, 6, TCP, 80)).toBe(g.checkBytes(packet, 24, 6, TCP, 80));
  });
});

describe('EgressGuard: egress.deny and egress.allow', () => {
  test('egress.deny refuses a private destination that is allowed by default', () => {
    const g = guard({ deny: cidrs('10.20.0.0/16', 'fd20::/16') });
    expect(verdict(g, '10.20.1.1')).toEqual({ reason: 'denied', via: null });
    expect(verdict(g, 'fd20::1')).toEqual({ reason: 'denied', via: null });
    expect(verdict(g, '::ffff:10.20.1.1')).toEqual({ reason: 'denied', via: 'ipv4_mapped' });
    expect(verdict(g, '10.21.1.1')).toBeNull();
  });

  test('egress.allow lifts a built-in refusal (cloud metadata for one service), in every form', () => {
    const g = guard({ allow: cidrs('169.254.169.254/32') });
    expect(verdict(g, '169.254.169.254')).toBeNull();
    expect(verdict(g, '::ffff:169.254.169.254')).toBeNull();
    expect(verdict(g, '169.254.169.253')).toEqual({ reason: 'link_local', via: null });
  });

  test('egress.deny wins over egress.allow', () => {
    const g = guard({ allow: cidrs('192.0.2.0/24'), deny: cidrs('192.0.2.5/32') });
    expect(verdict(g, '192.0.2.5')).toEqual({ reason: 'denied', via: null });
    expect(verdict(g, '192.0.2.255')).toBeNull();
  });

  test('egress.allow never re-opens the WireGuard listener, the tunnel addresses or other peers', () => {
    const g = guard({ allow: cidrs('0.0.0.0/0', '::/0') });
    expect(verdict(g, '127.0.0.1', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(verdict(g, '192.0.2.5', UDP, 51820)).toEqual({ reason: 'wireguard_listener', via: null });
    expect(verdict(g, '10.77.0.1')).toEqual({ reason: 'tunnel_address', via: null });
    expect(verdict(g, '10.77.0.5')).toEqual({ reason: 'peer_to_peer', via: null });
    expect(verdict(g, '127.0.0.1', UDP, 53)).toBeNull();
  });
});

describe('EgressGuard: the host address set', () => {
  test('setHostInterfaces replaces the host addresses and their broadcasts', () => {
    const g = guard();
    expect(verdict(g, '203.0.113.9')).toBeNull();
    g.setHostInterfaces(cidrs('203.0.113.9/24'));
    expect(verdict(g, '203.0.113.9')).toEqual({ reason: 'host_address', via: null });
    expect(verdict(g, '203.0.113.255')).toEqual({ reason: 'broadcast', via: null });
    expect(verdict(g, '192.0.2.5')).toBeNull();
  });

  test('isSelf: loopback, unspecified, host and tunnel addresses in any form, regardless of egress.allow', () => {
    const g = guard({ allow: cidrs('0.0.0.0/0') });
    for (const a of ['127.0.0.1', '::1', '0.0.0.0', '192.0.2.5', '::ffff:192.0.2.5', '10.77.0.1', '::ffff:127.0.0.1']) expect(g.isSelf(IpAddress.parse(a))).toBe(true);
    for (const a of ['192.0.2.6', '8.8.8.8', '::ffff:8.8.8.8', '2001:db8:6::1']) expect(g.isSelf(IpAddress.parse(a))).toBe(false);
  });
});

const iface = (address: string, cidr: string | null): NetworkInterfaceInfo =>
  ({ address, cidr, netmask: '', family: address.includes(':') ? 'IPv6' : 'IPv4', mac: '00:00:00:00:00:00', internal: false, scopeid: 0 }) as NetworkInterfaceInfo;

describe('host address watcher', () => {
  test('reads every address of every interface with its prefix', () => {
    const read = () => ({ lo: [iface('127.0.0.1', '127.0.0.1/8')], eth0: [iface('192.0.2.5', '192.0.2.5/24'), iface('fe80::5', 'fe80::5/64'), iface('10.0.0.9', null)] });
    expect(hostInterfaceCidrs(read).map(String)).toEqual(['127.0.0.1/8', '192.0.2.5/24', 'fe80::5/64', '10.0.0.9/32']);
  });

  test('a change of the host addresses reaches the guard on the next poll', () => {
    let ifaces = { eth0: [iface('192.0.2.5', '192.0.2.5/24')] };
    const g = guard({ hostInterfaces: [] });
    const w = watchHostAddresses((c) => g.setHostInterfaces(c), { read: () => ifaces, intervalMs: 60_000 });
    try {
      expect(verdict(g, '192.0.2.5')).toEqual({ reason: 'host_address', via: null });
      expect(w.poll()).toBe(false);
      ifaces = { eth0: [iface('192.0.2.5', '192.0.2.5/24'), iface('198.51.100.1', '198.51.100.1/24')] };
      expect(w.poll()).toBe(true);
      expect(verdict(g, '198.51.100.1')).toEqual({ reason: 'host_address', via: null });
      ifaces = { eth0: [] };
      expect(w.poll()).toBe(true);
      expect(verdict(g, '192.0.2.5')).toBeNull();
    } finally {
      w.stop();
    }
  });

  test('a failing read keeps the last known addresses', () => {
    let fail = false;
    const g = guard({ hostInterfaces: [] });
    const errors: string[] = [];
    const w = watchHostAddresses((c) => g.setHostInterfaces(c), {
      read: () => {
        if (fail) throw new Error('EMFILE');
        return { eth0: [iface('192.0.2.5', '192.0.2.5/24')] };
      },
      intervalMs: 60_000,
      onError: (e) => errors.push(e.message),
    });
    try {
      fail = true;
      expect(w.poll()).toBe(false);
      expect(errors).toEqual(['EMFILE']);
      expect(verdict(g, '192.0.2.5')).toEqual({ reason: 'host_address', via: null });
    } finally {
      w.stop();
    }
  });
});

// /proc/net/fib_trie as Linux prints it: docker0 (172.17.0.1) is up without carrier, so
// os.networkInterfaces() leaves it out, and 10.99.0.1/24 was put on lo (the whole /24 is local).
const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.99.0.0/24 2 0 2
        |-- 10.99.0.0
           /24 host LOCAL
        |-- 10.99.0.1
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 172.17.0.0/16 2 0 2
        |-- 172.17.0.0
           /16 link UNICAST
        |-- 172.17.0.1
           /32 host LOCAL
        |-- 172.17.255.255
           /32 link BROADCAST
`;
const IF_INET6 = `00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000002 04 40 00 82     eth0
20010db8000000090000000000000001 07 40 00 80  docker0
`;

describe('host addresses from the kernel tables (Linux)', () => {
  test('fib_trie: every LOCAL route, whole prefixes included; broadcast and unicast routes are not local', () => {
    expect(parseFibTrieLocal(FIB_TRIE).map(String).sort()).toEqual(['10.99.0.0/24', '10.99.0.1/32', '127.0.0.0/8', '127.0.0.1/32', '172.17.0.1/32']);
    expect(parseIfInet6(IF_INET6).map(String)).toEqual(['::1/128', 'fd00::2/128', '2001:db8:0:9::1/128']);
  });

  test('an address missing from the interface list but local to the kernel is refused, and so is all of a local prefix', () => {
    const g = guard({ hostInterfaces: [] });
    const w = watchHostAddresses((c, local) => g.setHostInterfaces(c, local), {
      read: () => ({ eth0: [iface('192.0.2.5', '192.0.2.5/24')] }),
      readLocal: () => kernelLocalCidrs((path) => (path.endsWith('fib_trie') ? FIB_TRIE : IF_INET6)),
      intervalMs: 60_000,
    });
    try {
      expect(verdict(g, '172.17.0.1', TCP, 22)).toEqual({ reason: 'host_address', via: null });
      expect(verdict(g, '10.99.0.77')).toEqual({ reason: 'host_address', via: null });
      expect(verdict(g, '2001:db8:0:9::1')).toEqual({ reason: 'host_address', via: null });
      expect(verdict(g, '::ffff:172.17.0.1')).toEqual({ reason: 'host_address', via: 'ipv4_mapped' });
      expect(verdict(g, '172.17.0.2')).toBeNull();
      expect(g.isSelf(IpAddress.parse('10.99.0.9'))).toBe(true);
    } finally {
      w.stop();
    }
  });

  test('a table too large to read every few seconds (a full Internet table) is not read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fib-'));
    try {
      writeFileSync(join(dir, 'small'), FIB_TRIE);
      expect(readProcCapped(join(dir, 'small'))).toBe(FIB_TRIE);
      writeFileSync(join(dir, 'large'), Buffer.alloc(MAX_PROC_TABLE_BYTES + 1, 0x20));
      expect(() => readProcCapped(join(dir, 'large'))).toThrow(RangeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('where the files cannot be read, the kernel adds nothing; on this machine it adds at least loopback', () => {
    expect(
      kernelLocalCidrs(() => {
        throw new Error('ENOENT');
      }),
    ).toEqual([]);
    if (process.platform === 'linux') expect(kernelLocalCidrs().map(String)).toEqual(expect.arrayContaining(['127.0.0.0/8']));
  });
});

