// DNS as a service of the concentrator's tunnel addresses: UDP port 53 is
// answered by the forwarder, each answer sized to fit one tunnel packet, and
// so is TCP port 53 (RFC 7766), message by message, with whole answers: both
// under the same per-user limits and with the same `dns` records. (Relaying
// TCP as a byte stream to an upstream would carry anything, unlogged.)
import type { Duplex } from 'node:stream';
import type { LocalUdpHandler, TcpFlowHandler, TcpFlowInfo } from '../../netstack';
import { Pieces } from '../../netstack/wire';
import type { DnsForwarder, DnsOutcome } from './forwarder';
import { maxUdpAnswerSize } from './message';

export const DNS_PORT = 53;
/** A TCP connection with no query read and no answer sent this long is closed, whatever is pending (RFC 7766 §6.2.3). */
export const DNS_TCP_IDLE_MS = 10_000;
/** Queries of one TCP connection in flight at once; past it the connection is not read until answers go out. */
export const DNS_TCP_MAX_PENDING = 16;
/** A TCP answer carries up to the 16-bit length (RFC 1035 §4.2.2). */
const DNS_TCP_MAX_ANSWER = 0xffff;
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

type QueryRecorder = (owner: { id: string; user: string }, query: Buffer) => (outcome: DnsOutcome, doneAt: number) => void;

/** The handler for a TCP flow to port 53: its queries go through the forwarder like UDP ones. */
export function dnsOverTcp(dns: DnsForwarder, record: QueryRecorder): (flow: TcpFlowInfo) => TcpFlowHandler {
  return (flow) => () => Promise.resolve({ attach: (client: Duplex) => serveDnsOverTcp(client, dns, flow.owner, record), abort: () => undefined });
}

/**
 * Reads length-prefixed queries (RFC 1035 §4.2.2) and answers each as it
 * comes back (RFC 7766 §6.2.1.1: in any order). A connection with no query
 * read and no answer sent for DNS_TCP_IDLE_MS is closed, whatever is pending
 * (the forwarder answers nothing to garbage).
 */
export function serveDnsOverTcp(client: Duplex, dns: DnsForwarder, owner: { id: string; user: string }, record: QueryRecorder): void {
  // Bytes are joined only once a length or a whole message is there: a query sent a byte at a time costs no copy per byte.
  const pieces = new Pieces();
  let want = 2;
  let pending = 0;
  let ended = false;
  let timer: NodeJS.Timeout | null = null;
  const active = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => client.destroy(), DNS_TCP_IDLE_MS);
  };
  const finishIfDone = (): void => {
    if (ended && pending === 0 && !client.writableEnded) client.end();
  };
  const answer = (a: Buffer): void => {
    pending--;
    if (!client.destroyed && !client.writableEnded) {
      const framed = Buffer.allocUnsafe(2 + a.length);
      framed.writeUInt16BE(a.length, 0);
      a.copy(framed, 2);
      client.write(framed);
    }
    if (pending < DNS_TCP_MAX_PENDING && client.isPaused()) client.resume();
    active();
    finishIfDone();
  };
  client.on('data', (chunk: Buffer) => {
    pieces.push(chunk);
    while (pieces.length >= want) {
      const all = pieces.joined();
      if (want === 2) {
        want = 2 + all.readUInt16BE(0);
        if (pieces.length < want) break;
      }
      const query = Buffer.from(all.subarray(2, want));
      pieces.skip(want);
      want = 2;
      pending++;
      dns.handle(query, DNS_TCP_MAX_ANSWER, answer, owner.user, record(owner, query));
    }
    if (pending >= DNS_TCP_MAX_PENDING) client.pause();
    active();
  });
  client.on('end', () => {
    ended = true;
    finishIfDone();
  });
  client.on('error', () => client.destroy());
  client.once('close', () => {
    if (timer !== null) clearTimeout(timer);
  });
  active();
}
