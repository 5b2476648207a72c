// `dns` records: each query a device sends to the concentrator's resolver,
// with its name, type, the answer's rcode and record count, the upstream that
// answered and the latency. The question is read when the query arrives (the
// packet buffer is reused afterwards); the record is written once the
// forwarder is done with it, answered or not.
import type { DnsOutcome } from '../dns';
import type { RecordWriter } from './session_log';

/** Who asked: the peer (public key) and its user; the device, when known here. */
export interface DnsAsker {
  id: string;
  user: string;
  device?: string;
}

const HEADER_LEN = 12;
const MAX_NAME = 255;

const TYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 48: 'DNSKEY', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 252: 'AXFR', 255: 'ANY', 257: 'CAA',
};
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

export interface DnsQuestion {
  name: string;
  qtype: string;
}


/** The first question of a query (RFC 1035 §4.1.2), or null when it cannot be read. */
export function dnsQuestion(msg: Buffer): DnsQuestion | null {
  if (msg.length < HEADER_LEN || msg.readUInt16BE(4) === 0) return null;
  const labels: string[] = [];
  let off = HEADER_LEN;
  let length = 0;
  for (;;) {
    if (off >= msg.length) return null;
    const len = msg[off];
    if (len === 0) break;
    // Names in queries are not compressed; a pointer or reserved bits here is not a question we parse.
    if ((len & 0xc0) !== 0 || off + 1 + len > msg.length) return null;
    length += len + 1;
    if (length > MAX_NAME) return null;
    labels.push(printableLabel(msg.subarray(off + 1, off + 1 + len)));
    off += 1 + len;
  }
  if (off + 5 > msg.length) return null;
  const type = msg.readUInt16BE(off + 1);
  return { name: labels.length === 0 ? '.' : labels.join('.'), qtype: TYPES[type] ?? `TYPE${type}` };
}

/** RFC 4343 case is kept; bytes outside printable ASCII and the dot are escaped as \DDD (RFC 4343 §2.1). */
function printableLabel(b: Buffer): string {
  let s = '';
  for (const c of b) s += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
  return s;
}

export function rcodeName(answer: Buffer): string {
  const code = answer.readUInt16BE(2) & 0x0f;
  return RCODES[code] ?? `RCODE${code}`;
}

export class DnsLog {
  constructor(private readonly records: RecordWriter) {}

  /** One record per query: `rcode` is TIMEOUT when no upstream answered. */
  exchange(p: DnsAsker, question: DnsQuestion | null, outcome: DnsOutcome, latencyMs: number): void {
    const a = outcome.answer !== null && outcome.answer.length >= HEADER_LEN ? outcome.answer : null;
    this.records.write(p.user, p.id, 'dns', {
      name: question?.name ?? null,
      qtype: question?.qtype ?? null,
      rcode: a === null ? 'TIMEOUT' : rcodeName(a),
      answers: a === null ? 0 : a.readUInt16BE(6),
      upstream: outcome.upstream === null ? null : formatServer(outcome.upstream),
      latencyMs: Math.round(latencyMs * 10) / 10,
      ...(outcome.rateLimited !== undefined && { rateLimited: outcome.rateLimited }),
    }, p.device);
  }
}

function formatServer(s: { host: string; port: number }): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}
