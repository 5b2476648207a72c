// How traffic leaves the concentrator, as status.json records it and as
// `sightline start` and `sightline status` print it.
import type { NatMode } from './plan';

export type EgressStatus =
  | { mode: 'socket' }
  | {
      mode: 'routed';
      interface: string;
      mtu: number;
      /** The TUN's addresses (the concentrator's tunnel addresses with the pools' prefixes). */
      addresses: string[];
      pools: string[];
      nat: NatMode;
      /** The nftables table routed mode owns (input filter, forward filter, and masquerade unless nat is none). */
      nftTable: string | null;
      /** Forwarding sysctls: their value now, and what they were before the concentrator changed them (null: unchanged). */
      forwarding: Record<string, { value: string; was: string | null }>;
    };

/** One line; a status.json from before routed mode existed has no `egress` and was socket mode. */
export function describeEgress(e: EgressStatus | undefined): string {
  if (e === undefined || e.mode === 'socket') return "socket (every flow re-originated from the concentrator's own sockets)";
  const nat = e.nat === 'masquerade' ? `NAT masquerade (nftables table ${e.nftTable ?? '-'})` : `NAT none: the network sees tunnel addresses and routes ${e.pools.join(', ')} to this host (nftables table ${e.nftTable ?? '-'}: filters only)`;
  const changed = Object.entries(e.forwarding).map(([k, v]) => (v.was === null ? `${k}=${v.value} (already)` : `${k} ${v.was}->${v.value}`));
  return `routed through TUN ${e.interface} (${e.addresses.join(', ')}, MTU ${e.mtu}), ${nat}, forwarding ${changed.join(', ')}`;
}
