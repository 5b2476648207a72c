// In-flight DNS queries of the forwarder, without I/O: fed queries, answers
// and `now`, it says what to send, what to deliver and what to drop.
//
// Off-path spoofing (Kaminsky) and resource exhaustion are what it stops:
// every query leaves with a fresh random ID chosen here (the client's own ID
// is restored on the answer), and an answer is accepted only when its ID is
// pending, it arrived on the socket the query left from, from the upstream
// address and port it was sent to, and it carries the same question.
// In-flight queries are capped per user and overall; beyond a cap the client
// gets SERVFAIL at once rather than silence, so its resolver does not pile
// retries onto a full table.
import { randomInt } from 'node:crypto';
import { IpAddress } from '../../netstack/wire';
import { isDnsQuery, isDnsResponse, isOtherOpcode, notImplementedFor, questionOf, sameQuestion, servfailFor, withId } from './message';

export interface QueryTableOptions {
  /** Upstream servers, in the order they are tried. */
  upstreams: ReadonlyArray<{ host: string; port: number }>;
  maxInFlightPerUser: number;
  maxInFlight: number;
  /** Per upstream attempt; then the next upstream is tried. */
  timeoutMs: number;
  /** 16-bit IDs; a CSPRNG by default (tests may fix it). */
  randomId?: () => number;
}

/** One client query being resolved; `ctx` is the edge's (how to reply). */
export interface PendingQuery<T> {
  readonly user: string;
  readonly clientId: number;
  readonly question: Buffer;
  /** The query as sent upstream: a copy with our ID. */
  wire: Buffer;
  /** Our ID while waiting for a UDP answer; -1 while resolving over TCP. */
  id: number;
  upstream: number;
  socket: number;
  deadline: number;
  readonly ctx: T;
}

export type RefusalReason = 'malformed' | 'opcode' | 'user_limit' | 'total_limit' | 'no_upstream' | 'budget';

export type BeginResult<T> =
  | { kind: 'send'; query: PendingQuery<T> }
  | { kind: 'refused'; reason: RefusalReason; answer: Buffer | null };

export type AnswerDrop = 'not_a_response' | 'unknown_id' | 'wrong_socket' | 'wrong_upstream' | 'wrong_question';

export type AnswerResult<T> = { kind: 'match'; query: PendingQuery<T>; answer: Buffer } | { kind: 'drop'; reason: AnswerDrop };

export class QueryTable<T> {
  private readonly byId = new Map<number, PendingQuery<T>>();
  private readonly all = new Set<PendingQuery<T>>();
  private readonly perUser = new Map<string, number>();
  /** Queries waiting for a UDP answer, per socket. */
  private readonly perSocket = new Map<number, number>();
  private readonly upstreamHosts: string[];
  private readonly randomId: () => number;

  constructor(private readonly opts: QueryTableOptions) {
    this.randomId = opts.randomId ?? (() => randomInt(0x10000));
    this.upstreamHosts = opts.upstreams.map((u) => canonicalHost(u.host));
  }

  get size(): number {
    return this.all.size;
  }

  inFlightFor(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  /**
   * A client's query: refused (with the SERVFAIL to send, or null to stay
   * silent on garbage), or admitted with a fresh ID, to be sent to upstream 0
   * through a socket the edge picks (see sent()).
   */
  begin(user: string, query: Buffer, ctx: T): BeginResult<T> {
    if (!isDnsQuery(query)) return { kind: 'refused', reason: 'malformed', answer: null };
    // UPDATE, NOTIFY and the like would reach the company's resolvers from the concentrator's address: not forwarded.
    if (isOtherOpcode(query)) return { kind: 'refused', reason: 'opcode', answer: notImplementedFor(query) };
    const question = questionOf(query);
    if (question === null) return { kind: 'refused', reason: 'malformed', answer: null };
    if (this.opts.upstreams.length === 0) return { kind: 'refused', reason: 'no_upstream', answer: servfailFor(query) };
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.opts.maxInFlightPerUser) return { kind: 'refused', reason: 'user_limit', answer: servfailFor(query) };
    if (this.all.size >= this.opts.maxInFlight) return { kind: 'refused', reason: 'total_limit', answer: servfailFor(query) };
    const id = this.freshId();
    const q: PendingQuery<T> = {
      user, clientId: query.readUInt16BE(0), question: Buffer.from(question), wire: withId(query, id), id,
      upstream: 0, socket: -1, deadline: Infinity, ctx,
    };
    this.byId.set(id, q);
    this.all.add(q);
    this.perUser.set(user, mine + 1);
    return { kind: 'send', query: q };
  }

  /** The edge sent `q.wire` from `socket` to upstream `q.upstream`. */
  sent(q: PendingQuery<T>, socket: number, now: number): void {
    q.socket = socket;
    q.deadline = now + this.opts.timeoutMs;
    this.perSocket.set(socket, (this.perSocket.get(socket) ?? 0) + 1);
  }

  /** An answer arrived on `socket` from `from`. */
  onAnswer(socket: number, from: { address: string; port: number }, msg: Buffer): AnswerResult<T> {
    if (!isDnsResponse(msg)) return { kind: 'drop', reason: 'not_a_response' };
    const q = this.byId.get(msg.readUInt16BE(0));
    if (q === undefined) return { kind: 'drop', reason: 'unknown_id' };
    if (q.socket !== socket) return { kind: 'drop', reason: 'wrong_socket' };
    const up = this.opts.upstreams[q.upstream];
    if (from.port !== up.port || canonicalHost(from.address) !== this.upstreamHosts[q.upstream]) return { kind: 'drop', reason: 'wrong_upstream' };
    const question = questionOf(msg);
    if (question === null || !sameQuestion(question, q.question)) return { kind: 'drop', reason: 'wrong_question' };
    return { kind: 'match', query: q, answer: withId(msg, q.clientId) };
  }

  /**
   * The UDP answer was truncated: the query continues over TCP to the same
   * upstream. Its ID no longer matches UDP answers; its slot stays taken
   * until finish(), and `deadline` bounds the TCP exchange too.
   */
  toTcp(q: PendingQuery<T>, now: number): void {
    this.releaseId(q);
    // Longer than the TCP exchange's own timeout, which answers the client with TC set.
    q.deadline = now + 2 * this.opts.timeoutMs;
  }

  /** Queries whose attempt timed out, each either moved to the next upstream (fresh ID) or finished. */
  expire(now: number): { retry: PendingQuery<T>[]; failed: PendingQuery<T>[] } {
    const retry: PendingQuery<T>[] = [];
    const failed: PendingQuery<T>[] = [];
    for (const q of this.all) {
      if (q.deadline > now) continue;
      if (q.id >= 0 && q.upstream + 1 < this.opts.upstreams.length) {
        this.releaseId(q);
        q.upstream++;
        q.socket = -1;
        q.id = this.freshId();
        q.wire.writeUInt16BE(q.id, 0);
        this.byId.set(q.id, q);
        q.deadline = Infinity;
        retry.push(q);
      } else {
        this.finish(q);
        failed.push(q);
      }
    }
    return { retry, failed };
  }

  isPending(q: PendingQuery<T>): boolean {
    return this.all.has(q);
  }

  /** The query is done (answered, failed or abandoned): its slot is free. */
  finish(q: PendingQuery<T>): void {
    if (!this.all.delete(q)) return;
    this.releaseId(q);
    const n = (this.perUser.get(q.user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(q.user);
    else this.perUser.set(q.user, n);
  }

  /** Queries waiting for a UDP answer on `socket` (the edge closes a rotated socket once none are left). */
  waitingOn(socket: number): number {
    return this.perSocket.get(socket) ?? 0;
  }

  clear(): PendingQuery<T>[] {
    const all = [...this.all];
    for (const q of all) this.finish(q);
    return all;
  }

  private releaseId(q: PendingQuery<T>): void {
    if (q.id < 0) return;
    if (this.byId.get(q.id) === q) this.byId.delete(q.id);
    q.id = -1;
    if (q.socket < 0) return;
    const n = (this.perSocket.get(q.socket) ?? 1) - 1;
    if (n <= 0) this.perSocket.delete(q.socket);
    else this.perSocket.set(q.socket, n);
  }

  private freshId(): number {
    // At most maxInFlight (≤ 16384) of 65536 IDs are taken: a few draws at worst.
    for (;;) {
      const id = this.randomId() & 0xffff;
      if (!this.byId.has(id)) return id;
    }
  }
}

/** One spelling per address (upstream hosts are IP literals; sockets may report IPv4 as ::ffff:a.b.c.d). */
function canonicalHost(s: string): string {
  const text = /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(s) ? s.slice(7) : s;
  return IpAddress.tryParse(text)?.toString() ?? text.toLowerCase();
}
