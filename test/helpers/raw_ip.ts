// Hand-built packets through a client's tunnel and the ICMP errors that come
// back, read to the type and code (raw_ip.py does the socket work).
import { join } from 'node:path';
import type { Namespace } from '../../scripts/lab/netns';
import { buildIcmpEcho, buildTcpPacket, buildUdpPacket, IpAddress, isWireError, parseIpPacket, IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, SYN } from '../../netstack/wire';
import { ROOT, type Client } from './topology';

const SCRIPT = join(ROOT, 'test', 'helpers', 'raw_ip.py');

/** Sends `packets` out of `ifname` inside `ns`; returns every packet that arrived there within waitMs. */
export function rawExchange(ns: Namespace, ifname: string, packets: Buffer[], waitMs = 1500): Buffer[] {
  const out = ns.execOk('python3', [SCRIPT, ifname, String(waitMs), ...packets.map((p) => p.toString('hex'))], { timeoutMs: waitMs + 10_000 });
  return (JSON.parse(out) as string[]).map((h) => Buffer.from(h, 'hex'));
}

export interface IcmpError {
  /** Who sent the error. */
  src: string;
  type: number;
  code: number;
  /** Destination and protocol of the packet the error is about (from its quote). */
  aboutDst: string;
  aboutProtocol: number;
}

/** An IP header's destination, protocol and the first 4 bytes after it (ports; type, code and checksum for ICMP); null when too short. */
function headerFields(packet: Buffer): { dst: Buffer; protocol: number; transportHead: Buffer } | null {
  const v4 = packet[0] >> 4 === 4;
  const headerLen = v4 ? (packet[0] & 0x0f) * 4 : 40;
  if (packet.length < headerLen + 4) return null;
  return {
    dst: v4 ? packet.subarray(16, 20) : packet.subarray(24, 40),
    protocol: v4 ? packet[9] : packet[6],
    transportHead: packet.subarray(headerLen, headerLen + 4),
  };
}

/** Which flow a packet (or an error's quote of it) belongs to: destination, protocol, ports. */
function flowKey(h: { dst: Buffer; protocol: number; transportHead: Buffer }): string {
  return `${h.dst.toString('hex')}/${h.protocol}/${h.transportHead.toString('hex')}`;
}

/** The ICMP/ICMPv6 errors (destination unreachable and the like) among `packets`, each with the flow key of what it quotes. */
function quotingErrors(packets: Buffer[]): Array<{ error: IcmpError; about: string }> {
  const out: Array<{ error: IcmpError; about: string }> = [];
  for (const p of packets) {
    const pkt = parseIpPacket(p);
    if (isWireError(pkt)) continue;
    const icmp = pkt.family === 4 ? pkt.protocol === IP_PROTOCOL_ICMP : pkt.protocol === IP_PROTOCOL_ICMPV6;
    // Types below 128 are errors in ICMPv6 (RFC 4443 §2.1); in ICMPv4, 3 (unreachable) is the one we meet.
    if (!icmp || pkt.payload.length < 8 + 20 || (pkt.family === 4 ? pkt.payload[0] !== 3 : pkt.payload[0] >= 128)) continue;
    const quoted = headerFields(pkt.payload.subarray(8));
    if (quoted === null) continue;
    out.push({
      error: {
        src: IpAddress.fromBytes(pkt.src).toString(),
        type: pkt.payload[0],
        code: pkt.payload[1],
        aboutDst: IpAddress.fromBytes(quoted.dst).toString(),
        aboutProtocol: quoted.protocol,
      },
      about: flowKey(quoted),
    });
  }
  return out;
}

/** The ICMP/ICMPv6 errors (destination unreachable and the like) among `packets`. */
export function icmpErrors(packets: Buffer[]): IcmpError[] {
  return quotingErrors(packets).map((e) => e.error);
}

/**
 * Sends the packets through the client's tunnel; the ICMP errors that come
 * back about them, in order. Errors about anything else (a SYN an earlier
 * test's client is still retransmitting) are not this probe's: each probe
 * packet has a source port of its own, and an error quotes it.
 */
export function probe(c: Client, packets: Buffer[]): IcmpError[] {
  const sent = new Set(packets.flatMap((p) => {
    const h = headerFields(p);
    return h === null ? [] : [flowKey(h)];
  }));
  return quotingErrors(rawExchange(c.ns, c.ifname, packets, 2000)).filter((e) => sent.has(e.about)).map((e) => e.error);
}

// Source ports (and echo identifiers) of hand-built probes: each probe is its own flow.
let nextPort = 41000;

export function tcpSyn(src: string, dst: string, port: number): Buffer {
  return buildTcpPacket(IpAddress.parse(src), IpAddress.parse(dst), {
    srcPort: nextPort++, dstPort: port, seq: 1, ack: 0, flags: SYN, window: 65535, urgent: 0, options: { mss: 1360 }, payload: Buffer.alloc(0),
  });
}

export function udpProbe(src: string, dst: string, port: number): Buffer {
  return buildUdpPacket(IpAddress.parse(src), nextPort++, IpAddress.parse(dst), port, Buffer.from('knock'));
}

export function echoProbe(src: string, dst: string): Buffer {
  return buildIcmpEcho(IpAddress.parse(src), IpAddress.parse(dst), 'echo_request', nextPort++ & 0xffff, 1, Buffer.from('probe'));
}
