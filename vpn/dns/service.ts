// DNS as a service of the concentrator's tunnel addresses: UDP port 53 is
// answered by the forwarder, each answer sized to fit one tunnel packet, and
// TCP port 53 (RFC 7766) is relayed to the first upstream.
import { socketEgress, type LocalUdpHandler, type TcpFlowHandler } from '../../netstack';
import type { DnsForwarder, DnsOutcome, DnsServer } from './forwarder';
import { maxUdpAnswerSize } from './message';

export const DNS_PORT = 53;
const DNS_TCP_TIMEOUT_MS = 5000;
// IPv6 + UDP headers: the largest DNS answer that fits one tunnel packet.
const IP_UDP_OVERHEAD = 48;

/** The stack's handler for UDP port 53; `record` starts a query's `dns` record (see TunnelRecords.dnsQuery). */
export function dnsOverUdp(
  dns: DnsForwarder,
  mtu: number,
  record: (owner: { id: string; user: string }, query: Buffer) => (outcome: DnsOutcome, doneAt: number) => void,
): LocalUdpHandler {
  const tunnelLimit = mtu - IP_UDP_OVERHEAD;
  return (req, reply) => dns.handle(req.payload, maxUdpAnswerSize(req.payload, tunnelLimit), reply, req.owner.user, record(req.owner, req.payload));
}

/** The handler for a TCP flow to port 53 (null: no upstream to relay to). */
export function dnsOverTcp(upstreams: DnsServer[]): TcpFlowHandler | null {
  if (upstreams.length === 0) return null;
  const { host, port } = upstreams[0];
  return () => socketEgress(host, port, DNS_TCP_TIMEOUT_MS);
}
