// DNS for employees: queries sent to the concentrator's tunnel addresses are
// forwarded to dns.upstream over UDP, and over TCP when the UDP answer comes
// back truncated (RFC 1035 §4.2, RFC 7766), so lookups travel through the
// tunnel and can be attributed to a user. The query table (dns/query_table.ts)
// decides; this file is its edge: it owns the sockets and the sweep timer,
// and reads the clock when they deliver.
import { readFileSync } from 'node:fs';
import { isIP, Socket as TcpSocket } from 'node:net';
import type { RemoteInfo } from 'node:dgram';
import { parseHostPort } from '../config';
import { isDnsQuery, isTruncated, refusedFor, servfailFor, truncatedAnswer, withId } from './message';
import { QueryTable, type AnswerDrop, type PendingQuery, type RefusalReason } from './query_table';
import { DnsSockets } from './sockets';
import { Counters, monotonicNow } from '../../netstack';
import { PerUserRecordLimit } from '../logs/record_limit';

const MAX_TCP_ANSWER = 65535;
const SWEEP_MS = 250;
export const DEFAULT_DNS_TIMEOUT_MS = 3000;
export const DEFAULT_MAX_IN_FLIGHT_PER_USER = 64;
export const DEFAULT_MAX_IN_FLIGHT = 4096;
/**
 * Queries a user may send (dns.maxQueriesPerSecondPerUser, dns.queryBurstPerUser): a bucket of 1000
 * refilled at 20 a second, so a device's start-up burst passes and a flood is held to 20 records a second.
 */
export const DEFAULT_MAX_QUERIES_PER_SECOND_PER_USER = 20;
export const DEFAULT_QUERY_BURST_PER_USER = 1000;
/** Charged to the user's buffer budget per query in flight, beyond its bytes (table entry, copies). */
const QUERY_OVERHEAD_BYTES = 512;

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

/** Bytes a user's queries may hold (the concentrator's buffer budgets); false refuses the query. */
export interface DnsBudget {
  reserve(user: string, bytes: number): boolean;
  unreserve(user: string, bytes: number): void;
}

/** How a forwarded query ended: the answer sent to the client (null: none) and the upstream that gave it. */
export interface DnsOutcome {
  answer: Buffer | null;
  upstream: DnsServer | null;
  /** Queries of the same user refused by the rate limit since the previous one let through (absent: none). */
  rateLimited?: number;
}

export interface DnsForwarderOptions {
  upstreams: DnsServer[];
  timeoutMs?: number;
  /** In-flight queries per user (dns.maxInFlightPerUser); beyond it: SERVFAIL. */
  maxInFlightPerUser?: number;
  /** In-flight queries in all (dns.maxInFlight); beyond it: SERVFAIL. */
  maxInFlight?: number;
  /** Queries per second per user (dns.maxQueriesPerSecondPerUser) after a burst (dns.queryBurstPerUser); beyond: REFUSED, and no record. */
  maxQueriesPerSecondPerUser?: number;
  queryBurstPerUser?: number;
  budget?: DnsBudget;
  onError?(what: string, err: Error): void;
  /** Tests: socket rotation and query IDs. */
  sockets?: { perFamily?: number; rotateAfterQueries?: number; rotateAfterMs?: number };
  randomId?: () => number;
}

interface QueryCtx {
  maxAnswer: number;
  reply: (answer: Buffer) => void;
  charge: number;
  tcp: TcpSocket | null;
  /** Told once how the query ended (the per-user `dns` record), and when. */
  onDone?: (outcome: DnsOutcome, now: number) => void;
}

/** Why a query got no upstream: the table's reasons, and the per-user rate the forwarder meters first. */
type Refusal = RefusalReason | 'rate_limit';

const REFUSAL_COUNTER: Record<Refusal, DnsCounter> = {
  rate_limit: 'refusedRateLimit',
  malformed: 'malformed',
  opcode: 'refusedOpcode',
  user_limit: 'refusedUserLimit',
  total_limit: 'refusedTotalLimit',
  no_upstream: 'refusedNoUpstream',
  budget: 'refusedBudget',
};

const DROP_COUNTER: Record<AnswerDrop, DnsCounter> = {
  not_a_response: 'droppedNotResponse',
  unknown_id: 'droppedUnknownId',
  wrong_socket: 'droppedWrongSocket',
  wrong_upstream: 'droppedWrongUpstream',
  wrong_question: 'droppedWrongQuestion',
};

const DNS_COUNTERS = [
  'queries', 'answers', 'tcpRetries', 'timeouts', 'malformed', 'truncatedToClient',
  'refusedOpcode', 'refusedRateLimit', 'refusedUserLimit', 'refusedTotalLimit', 'refusedNoUpstream', 'refusedBudget',
  'droppedNotResponse', 'droppedUnknownId', 'droppedWrongSocket', 'droppedWrongUpstream', 'droppedWrongQuestion',
  'sendErrors', 'internalErrors', 'socketsOpened', 'socketsRotated',
] as const;
export type DnsCounter = (typeof DNS_COUNTERS)[number];
export type DnsCounters = Record<DnsCounter, number>;

export class DnsForwarder {
  private readonly c = new Counters<DnsCounter>(DNS_COUNTERS);
  private readonly timeoutMs: number;
  private readonly table: QueryTable<QueryCtx>;
  private readonly sockets: DnsSockets;
  private readonly rate: PerUserRecordLimit;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: DnsForwarderOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
    this.rate = new PerUserRecordLimit(
      monotonicNow,
      opts.maxQueriesPerSecondPerUser ?? DEFAULT_MAX_QUERIES_PER_SECOND_PER_USER,
      opts.queryBurstPerUser ?? DEFAULT_QUERY_BURST_PER_USER,
    );
    this.table = new QueryTable<QueryCtx>({
      upstreams: opts.upstreams,
      maxInFlightPerUser: opts.maxInFlightPerUser ?? DEFAULT_MAX_IN_FLIGHT_PER_USER,
      maxInFlight: opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      timeoutMs: this.timeoutMs,
      randomId: opts.randomId,
    });
    this.sockets = new DnsSockets({
      ...opts.sockets,
      onMessage: (socket, msg, from) => this.guard('DNS answer', () => this.onUdpAnswer(socket, msg, from)),
      onError: (err) => opts.onError?.('DNS upstream socket', err),
    });
  }

  get upstreams(): DnsServer[] {
    return this.opts.upstreams;
  }

  get counters(): DnsCounters {
    const s = this.sockets.stats;
    this.c.set('socketsOpened', s.opened);
    this.c.set('socketsRotated', s.rotated);
    return this.c.values;
  }

  /** Queries in flight (for a user, or in all). */
  inFlight(user?: string): number {
    return user === undefined ? this.table.size : this.table.inFlightFor(user);
  }

  /**
   * Forwards one query of `user`; `reply` is called at most once, with an
   * answer that fits maxAnswer, or a SERVFAIL when a limit refused the query.
   * `onDone` is called once when the forwarder is done with an answerable
   * query, with the answer sent (or null) and the upstream that gave it.
   * Queries without a user share one account (tests, local tools).
   */
  handle(query: Buffer, maxAnswer: number, reply: (answer: Buffer) => void, user = '', onDone?: (outcome: DnsOutcome, now: number) => void): void {
    // Every query a user sends becomes a record and, unless refused, an upstream query: a user
    // sending faster than the rate gets REFUSED, unrecorded, and its next record says how many.
    const refusedBefore = this.rate.take(user);
    if (refusedBefore === null) return this.refuse('rate_limit', isDnsQuery(query) ? refusedFor(query) : null, reply);
    if (refusedBefore > 0 && onDone !== undefined) {
      const recordDone = onDone;
      onDone = (outcome, now) => recordDone({ ...outcome, rateLimited: refusedBefore }, now);
    }
    const charge = query.length + QUERY_OVERHEAD_BYTES;
    const r = this.table.begin(user, query, { maxAnswer, reply, charge, tcp: null, onDone });
    if (r.kind === 'refused') return this.refuse(r.reason, r.answer, reply, onDone);
    this.c.inc('queries');
    if (this.opts.budget && !this.opts.budget.reserve(user, charge)) {
      this.table.finish(r.query);
      return this.refuse('budget', servfailFor(withId(r.query.wire, r.query.clientId)), reply, onDone);
    }
    this.sendUdp(r.query);
  }

  close(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const q of this.table.clear()) this.released(q);
    this.sockets.closeAll();
  }

  /** A refused query gets its answer at once (SERVFAIL, NOTIMP or REFUSED; null: garbage, none), recorded when `onDone` is given. */
  private refuse(reason: Refusal, answer: Buffer | null, reply: (a: Buffer) => void, onDone?: (outcome: DnsOutcome, now: number) => void): void {
    this.c.inc(REFUSAL_COUNTER[reason]);
    if (answer === null) return;
    this.deliverTo(reply, answer);
    if (onDone) this.guard('DNS record', () => onDone({ answer, upstream: null }, monotonicNow()));
  }

  private sendUdp(q: PendingQuery<QueryCtx>): void {
    const server = this.opts.upstreams[q.upstream];
    const now = monotonicNow();
    const s = this.sockets.pick(isIP(server.host) === 6 ? 6 : 4, now);
    this.table.sent(q, s.id, now);
    s.sock.send(q.wire, server.port, server.host, (err) => {
      if (err) {
        this.c.inc('sendErrors');
        this.opts.onError?.(`DNS over UDP to ${server.host}:${server.port}`, err);
      }
    });
    this.armSweep();
  }

  private onUdpAnswer(socket: number, msg: Buffer, from: RemoteInfo): void {
    const r = this.table.onAnswer(socket, from, msg);
    if (r.kind === 'drop') {
      this.c.inc(DROP_COUNTER[r.reason]);
      return;
    }
    const { query: q, answer } = r;
    if (!isTruncated(answer) && answer.length <= q.ctx.maxAnswer) return this.deliver(q, answer);
    this.c.inc('tcpRetries');
    this.table.toTcp(q, monotonicNow());
    this.sockets.closeIfIdle(socket, this.table.waitingOn(socket));
    this.tcpRetry(q, answer);
  }

  private tcpRetry(q: PendingQuery<QueryCtx>, udpAnswer: Buffer): void {
    const server = this.opts.upstreams[q.upstream];
    this.tcpExchange(q, server).then(
      (full) => this.guard('DNS over TCP answer', () => {
        if (!this.table.isPending(q)) return;
        if (full.length <= q.ctx.maxAnswer) return this.deliver(q, full);
        this.c.inc('truncatedToClient');
        this.deliver(q, truncatedAnswer(full));
      }),
      (err: Error) => this.guard('DNS over TCP failure', () => {
        this.opts.onError?.(`DNS over TCP to ${server.host}:${server.port}`, err);
        if (!this.table.isPending(q)) return;
        // The client retries over TCP itself; hand it a header-only truncated answer.
        this.c.inc('truncatedToClient');
        this.deliver(q, truncatedAnswer(udpAnswer));
      }),
    );
  }

  /** The query over TCP (RFC 7766 framing); the answer must carry our ID and the same question. */
  private tcpExchange(q: PendingQuery<QueryCtx>, server: DnsServer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = new TcpSocket();
      q.ctx.tcp = sock;
      const ourId = q.wire.readUInt16BE(0);
      let chunks: Buffer[] = [];
      let got = 0;
      sock.setTimeout(this.timeoutMs, () => sock.destroy(new Error('timed out')));
      sock.on('error', reject);
      sock.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got > MAX_TCP_ANSWER + 2) return sock.destroy(new Error('answer too long'));
        const all = Buffer.concat(chunks);
        chunks = [all];
        if (all.length < 2 || all.length < 2 + all.readUInt16BE(0)) return;
        sock.end();
        const answer = all.subarray(2, 2 + all.readUInt16BE(0));
        if (answer.length < 12 || answer.readUInt16BE(0) !== ourId) return reject(new Error('answer with another ID'));
        resolve(withId(answer, q.clientId));
      });
      sock.on('close', () => reject(new Error('connection closed before a full answer')));
      sock.connect(server.port, server.host, () => {
        const framed = Buffer.allocUnsafe(2 + q.wire.length);
        framed.writeUInt16BE(q.wire.length, 0);
        q.wire.copy(framed, 2);
        sock.write(framed);
      });
    });
  }

  private deliver(q: PendingQuery<QueryCtx>, answer: Buffer): void {
    const socket = q.socket;
    this.table.finish(q);
    this.released(q);
    this.sockets.closeIfIdle(socket, this.table.waitingOn(socket));
    this.c.inc('answers');
    this.deliverTo(q.ctx.reply, answer);
    this.done(q, answer);
  }

  private done(q: PendingQuery<QueryCtx>, answer: Buffer | null): void {
    const onDone = q.ctx.onDone;
    if (onDone) this.guard('DNS record', () => onDone({ answer, upstream: answer === null ? null : this.opts.upstreams[q.upstream] }, monotonicNow()));
  }

  private deliverTo(reply: (a: Buffer) => void, answer: Buffer): void {
    this.guard('DNS reply to the client', () => reply(answer));
  }

  /** A finished query gives back its budget and its TCP socket, if any. */
  private released(q: PendingQuery<QueryCtx>): void {
    this.opts.budget?.unreserve(q.user, q.ctx.charge);
    if (q.ctx.tcp !== null && !q.ctx.tcp.destroyed) q.ctx.tcp.destroy();
    q.ctx.tcp = null;
  }

  private armSweep(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(() => this.guard('DNS timeout sweep', () => this.sweep()), SWEEP_MS);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const { retry, failed } = this.table.expire(monotonicNow());
    for (const q of retry) {
      this.c.inc('timeouts');
      this.sendUdp(q);
    }
    for (const q of failed) {
      this.c.inc('timeouts');
      this.released(q);
      this.done(q, null);
    }
    this.sockets.closeIdle((id) => this.table.waitingOn(id));
    if (this.table.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Error boundary for every callback fed by the network or a timer: count, report, never throw. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.c.inc('internalErrors');
      this.opts.onError?.(what, err instanceof Error ? err : new Error(String(err)));
    }
  }
}
