// What routed mode changes on the host, as plain data and text (no I/O), so
// that each piece is tested without root and the README can list it:
// the TUN's addresses, MTU and link state; the forwarding sysctls; and the
// nftables table `inet sightline`. The pools' routes are the kernel's
// connected routes of the TUN's addresses (each address carries its pool's
// prefix), so they come and go with the interface.
import { IpCidr } from '../../netstack/wire';

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'sightline';

/**
 * The kernel's queue of packets routed into the TUN, waiting for the
 * concentrator to read them (the default is 500). At 600 Mbit/s 500 packets
 * last 9 ms: on a busy host a concentrator that is not scheduled for longer
 * loses packets there (measured by `npm run bench -- routed` at load 8:
 * 750-1,600 TX drops per run with 500, none with 2000), and TCP backs off.
 */
export const TUN_TXQUEUELEN = 2000;

/** The sysctls routed mode sets to 1 (and restores on exit when it changed them). */
export const FORWARDING_SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'] as const;

export type NatMode = 'masquerade' | 'none';

export interface RoutedHostPlan {
  tun: string;
  mtu: number;
  /** The concentrator's tunnel addresses with their pools' prefix lengths: "10.77.0.1/24", "fd77::1/64". */
  addresses: string[];
  /** The pools as networks: "10.77.0.0/24", "fd77::/64". */
  pools: string[];
  nat: NatMode;
}

export function hostPlan(opts: { tun: string; mtu: number; serverV4: string; serverV6: string; ipv4Pool: string; ipv6Pool: string; nat: NatMode }): RoutedHostPlan {
  const v4 = IpCidr.parse(opts.ipv4Pool);
  const v6 = IpCidr.parse(opts.ipv6Pool);
  return {
    tun: opts.tun,
    mtu: opts.mtu,
    addresses: [`${opts.serverV4}/${v4.prefixLength}`, `${opts.serverV6}/${v6.prefixLength}`],
    pools: [`${v4.network.toString()}/${v4.prefixLength}`, `${v6.network.toString()}/${v6.prefixLength}`],
    nat: opts.nat,
  };
}

/**
 * `ip` invocations that configure the TUN, in order. No link-local address
 * (addrgenmode none): the kernel would otherwise send router solicitations
 * and MLD reports into the tunnel, which no peer owns.
 */
export function ipCommands(plan: RoutedHostPlan): string[][] {
  const dev = plan.tun;
  return [
    ['link', 'set', 'dev', dev, 'mtu', String(plan.mtu), 'txqueuelen', String(TUN_TXQUEUELEN)],
    ['link', 'set', 'dev', dev, 'addrgenmode', 'none'],
    ...plan.addresses.map((a) => ['addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : [])]),
    ['link', 'set', 'dev', dev, 'up'],
  ];
}

/**
 * The nftables table, replaced atomically (one `nft -f` transaction: create
 * if missing, delete, define), so a leftover of a crashed run never stays
 * beside the new one.
 *
 * - input: nothing that arrives on the TUN is delivered to the host itself.
 *   The userspace guard already refuses the host's addresses before the TUN;
 *   this is the kernel's own wall behind it, in both NAT modes.
 * - forward: toward the TUN only replies and related ICMP errors of flows a
 *   device opened: the network cannot open connections to employee devices
 *   (as in socket mode, where nothing can).
 * - postrouting (masquerade only): pool sources leaving any other interface
 *   take that interface's address.
 */
export function nftRuleset(plan: RoutedHostPlan): string {
  const dev = JSON.stringify(plan.tun);
  const [v4, v6] = plan.pools;
  const table = `${NFT_FAMILY} ${NFT_TABLE}`;
  const lines = [
    `table ${table} {}`,
    `delete table ${table}`,
    `table ${table} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${dev} counter drop comment "TUN traffic never reaches the host itself"`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    oifname ${dev} ct state established,related accept`,
    `    oifname ${dev} counter drop comment "no connections opened toward tunnel devices"`,
    '  }',
  ];
  if (plan.nat === 'masquerade') {
    lines.push(
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${v4} oifname != ${dev} counter masquerade`,
      `    ip6 saddr ${v6} oifname != ${dev} counter masquerade`,
      '  }',
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** /proc/sys path of a dotted sysctl name. */
export function sysctlPath(name: string): string {
  return `/proc/sys/${name.replace(/\./g, '/')}`;
}
