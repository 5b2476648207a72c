// DNS for employees: queries sent to the concentrator's tunnel addresses are
// forwarded to dns.upstream over UDP, and over TCP when the UDP answer comes
// back truncated (RFC 1035 §4.2, RFC 7766), so lookups travel through the
// tunnel and can be attributed to a user.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIP, Socket as TcpSocket } from 'node:net';
import { parseHostPort } from './config';

const HEADER_LEN = 12;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const TYPE_OPT = 41;
const MAX_TCP_ANSWER = 65535;

export interface DnsServer {
  host: string;
  port: number;
}

export function parseDnsServers(list: string[]): DnsServer[] {
  return list.map((s) => (isIP(s) !== 0 ? { host: s, port: 53 } : parseHostPort(s, true) ?? { host: s, port: 53 }));
}

/** The host's resolvers, as the concentrator's default upstream. */
export function systemResolvers(resolvConf = '/etc/resolv.conf'): DnsServer[] {
  let text = '';
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    return [];
  }
  const out: DnsServer[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIP(m[1].split('%')[0]) !== 0) out.push({ host: m[1].split('%')[0], port: 53 });
  }
  return out;
}

/**
 * The largest answer the client accepts over UDP: its EDNS(0) payload size
 * (RFC 6891 §6.2.3) or 512, and never more than fits one tunnel packet.
 */
export function maxUdpAnswerSize(query: Buffer, tunnelLimit: number): number {
  const edns = ednsPayloadSize(query);
  return Math.min(edns ?? 512, tunnelLimit);
}

function ednsPayloadSize(q: Buffer): number | null {
  if (q.length < HEADER_LEN) return null;
  const qd = q.readUInt16BE(4);
  const an = q.readUInt16BE(6);
  const ns = q.readUInt16BE(8);
  const ar = q.readUInt16BE(10);
  let off = HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    off = skipName(q, off);
    if (off < 0 || off + 4 > q.length) return null;
    off += 4;
  }
  for (let i = 0; i < an + ns + ar; i++) {
    off = skipName(q, off);
    if (off < 0 || off + 10 > q.length) return null;
    const type = q.readUInt16BE(off);
    const cls = q.readUInt16BE(off + 2);
    const rdlen = q.readUInt16BE(off + 8);
    if (type === TYPE_OPT) return Math.max(512, cls);
    off += 10 + rdlen;
  }
  return null;
}

function skipName(b: Buffer, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= b.length) return -1;
    const len = b[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

export function isDnsQuery(b: Buffer): boolean {
  return b.length >= HEADER_LEN && (b.readUInt16BE(2) & FLAG_QR) === 0;
}

/** How a forwarded query ended: the answer sent to the client (null: none) and the upstream that gave it. */
export interface DnsOutcome {
  answer: Buffer | null;
  upstream: DnsServer | null;
}

export interface DnsForwarderOptions {
  upstreams: DnsServer[];
  timeoutMs?: number;
  onError?(what: string, err: Error): void;
}

export class DnsForwarder {
  readonly counters = { queries: 0, answers: 0, tcpRetries: 0, timeouts: 0, malformed: 0, truncatedToClient: 0 };
  private readonly timeoutMs: number;

  constructor(private readonly opts: DnsForwarderOptions) {
    this.timeoutMs = opts.timeoutMs ?? 3000;
  }

  get upstreams(): DnsServer[] {
    return this.opts.upstreams;
  }

  /**
   * Forwards one query; `reply` is called at most once with an answer that fits maxAnswer.
   * `onDone` is called exactly once per forwarded query when the forwarder is done with it,
   * with the answer sent (or null) and the upstream that gave it: the per-user `dns` record.
   */
  handle(query: Buffer, maxAnswer: number, reply: (answer: Buffer) => void, onDone?: (outcome: DnsOutcome) => void): void {
    if (!isDnsQuery(query)) {
      this.counters.malformed++;
      return;
    }
    this.counters.queries++;
    const q = Buffer.from(query);
    void this.forward(q, maxAnswer).then((outcome) => {
      if (outcome.answer) {
        this.counters.answers++;
        reply(outcome.answer);
      }
      onDone?.(outcome);
    });
  }

  private async forward(query: Buffer, maxAnswer: number): Promise<DnsOutcome> {
    for (const server of this.opts.upstreams) {
      const answer = await this.udpExchange(server, query);
      if (answer === null) continue;
      if ((answer.readUInt16BE(2) & FLAG_TC) === 0 && answer.length <= maxAnswer) return { answer, upstream: server };
      this.counters.tcpRetries++;
      const full = await this.tcpExchange(server, query).catch((err: Error) => {
        this.opts.onError?.(`DNS over TCP to ${server.host}:${server.port}`, err);
        return null;
      });
      if (full !== null && full.length <= maxAnswer) return { answer: full, upstream: server };
      this.counters.truncatedToClient++;
      // The client retries over TCP; hand it a header-only truncated answer.
      return { answer: truncatedAnswer(full ?? answer), upstream: server };
    }
    return { answer: null, upstream: null };
  }

  private udpExchange(server: DnsServer, query: Buffer): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const sock = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
      const id = query.readUInt16BE(0);
      const done = (v: Buffer | null) => {
        clearTimeout(timer);
        sock.close();
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.counters.timeouts++;
        done(null);
      }, this.timeoutMs);
      sock.on('error', (err) => {
        this.opts.onError?.(`DNS over UDP to ${server.host}:${server.port}`, err);
        done(null);
      });
      sock.on('message', (msg, rinfo) => {
        // Only an answer from the server we asked, to the question we asked.
        if (rinfo.port !== server.port || msg.length < HEADER_LEN || msg.readUInt16BE(0) !== id || (msg.readUInt16BE(2) & FLAG_QR) === 0) return;
        done(msg);
      });
      sock.connect(server.port, server.host, () => sock.send(query));
    });
  }

  private tcpExchange(server: DnsServer, query: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = new TcpSocket();
      const chunks: Buffer[] = [];
      let got = 0;
      sock.setTimeout(this.timeoutMs, () => sock.destroy(new Error('timed out')));
      sock.on('error', reject);
      sock.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got > MAX_TCP_ANSWER + 2) return sock.destroy(new Error('answer too long'));
        const all = Buffer.concat(chunks);
        if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
          sock.end();
          resolve(all.subarray(2, 2 + all.readUInt16BE(0)));
        }
      });
      sock.on('close', () => reject(new Error('connection closed before a full answer')));
      sock.connect(server.port, server.host, () => {
        const framed = Buffer.allocUnsafe(2 + query.length);
        framed.writeUInt16BE(query.length, 0);
        query.copy(framed, 2);
        sock.write(framed);
      });
    });
  }
}

function truncatedAnswer(answer: Buffer): Buffer {
  // Header + question only, TC set, no records: the RFC 2181 §9 way to say "use TCP".
  const end = questionEnd(answer);
  const out = Buffer.from(answer.subarray(0, end));
  out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC, 2);
  if (end === HEADER_LEN) out.writeUInt16BE(0, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

function questionEnd(b: Buffer): number {
  let off = HEADER_LEN;
  const qd = b.length >= HEADER_LEN ? b.readUInt16BE(4) : 0;
  for (let i = 0; i < qd; i++) {
    const n = skipName(b, off);
    if (n < 0 || n + 4 > b.length) return HEADER_LEN;
    off = n + 4;
  }
  return off;
}
