// The forwarder's query table, packet by packet: random IDs, answers matched
// by ID, socket, upstream and question (off-path spoofing, RFC 5452), and
// in-flight caps per user and overall.
import { QueryTable, type QueryTableOptions } from '../../../../vpn/dns/query_table';

const UP0 = { host: '192.0.2.53', port: 53 };
const UP1 = { host: '2001:db8::53', port: 5353 };

function query(id: number, name = 'a.test'): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** An answer to what went upstream: same ID and question, QR set, one dummy byte of "records". */
function answerTo(wire: Buffer): Buffer {
  const a = Buffer.concat([wire, Buffer.from([0xaa])]);
  a.writeUInt16BE(0x8180, 2);
  return a;
}

function table(opts: Partial<QueryTableOptions> = {}): QueryTable<string> {
  return new QueryTable<string>({ upstreams: [UP0], maxInFlightPerUser: 64, maxInFlight: 4096, timeoutMs: 3000, ...opts });
}

function admit(t: QueryTable<string>, user: string, q: Buffer, socket = 1, now = 0) {
  const r = t.begin(user, q, 'ctx');
  if (r.kind !== 'send') throw new Error(`refused: ${r.reason}`);
  t.sent(r.query, socket, now);
  return r.query;
}

const from0 = { address: UP0.host, port: UP0.port };

describe('DNS query IDs', () => {
  test('each query leaves with an ID chosen by the forwarder, spread over all 16 bits, whatever the client chose', () => {
    const t = table();
    const ids = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const q = admit(t, 'alice', query(0x1234));
      expect(q.wire.readUInt16BE(0)).toBe(q.id);
      ids.add(q.id);
      t.finish(q);
    }
    // 2000 draws from 65536 values: about 30 collisions expected, never hundreds.
    expect(ids.size).toBeGreaterThan(1900);
    expect(Math.max(...ids)).toBeGreaterThan(0x8000);
  });

  test('IDs of queries in flight are never reused, even when the generator repeats itself', () => {
    const draws = [7, 7, 7, 9];
    const t = table({ randomId: () => draws.shift() ?? 11 });
    expect([admit(t, 'u', query(1)).id, admit(t, 'u', query(2)).id]).toEqual([7, 9]);
  });

  test("the answer goes back to the client with the client's own ID", () => {
    const t = table();
    const q = admit(t, 'alice', query(0xbeef));
    const r = t.onAnswer(1, from0, answerTo(q.wire));
    expect(r.kind).toBe('match');
    if (r.kind === 'match') {
      expect(r.answer.readUInt16BE(0)).toBe(0xbeef);
      expect(r.answer.subarray(2)).toEqual(answerTo(q.wire).subarray(2));
    }
  });
});

describe('spoofed answers are dropped and counted by reason', () => {
  test('an ID that is not pending', () => {
    const t = table();
    const q = admit(t, 'alice', query(1));
    const forged = answerTo(q.wire);
    forged.writeUInt16BE((q.id + 1) & 0xffff, 0);
    expect(t.onAnswer(1, from0, forged)).toEqual({ kind: 'drop', reason: 'unknown_id' });
  });

  test('the right ID for another name (cache poisoning tries a different question)', () => {
    const t = table();
    const q = admit(t, 'alice', query(1, 'bank.test'));
    const other = query(q.id, 'evil.test');
    expect(t.onAnswer(1, from0, answerTo(other))).toEqual({ kind: 'drop', reason: 'wrong_question' });
  });

  test('the right question with another type', () => {
    const t = table();
    const q = admit(t, 'alice', query(1));
    const a = answerTo(q.wire);
    a.writeUInt16BE(28, q.wire.length - 4); // AAAA instead of A
    expect(t.onAnswer(1, from0, a)).toEqual({ kind: 'drop', reason: 'wrong_question' });
  });

  test('from an address that is not the upstream the query went to', () => {
    const t = table();
    const q = admit(t, 'alice', query(1));
    expect(t.onAnswer(1, { address: '192.0.2.66', port: 53 }, answerTo(q.wire))).toEqual({ kind: 'drop', reason: 'wrong_upstream' });
  });

  test("from the upstream's address but another source port", () => {
    const t = table();
    const q = admit(t, 'alice', query(1));
    expect(t.onAnswer(1, { address: UP0.host, port: 5300 }, answerTo(q.wire))).toEqual({ kind: 'drop', reason: 'wrong_upstream' });
  });

  test('to another of our sockets (another source port of ours) than the query left from', () => {
    const t = table();
    const q = admit(t, 'alice', query(1), 3);
    expect(t.onAnswer(4, from0, answerTo(q.wire))).toEqual({ kind: 'drop', reason: 'wrong_socket' });
  });

  test('a query (QR clear) posing as an answer', () => {
    const t = table();
    const q = admit(t, 'alice', query(1));
    expect(t.onAnswer(1, from0, q.wire)).toEqual({ kind: 'drop', reason: 'not_a_response' });
  });

  test('after the forgeries the genuine answer still matches; names compare case-insensitively', () => {
    const t = table();
    const q = admit(t, 'alice', query(1, 'Intranet.Corp.test'));
    t.onAnswer(1, { address: UP0.host, port: 5300 }, answerTo(q.wire));
    const genuine = answerTo(query(q.id, 'intranet.corp.TEST'));
    expect(t.onAnswer(1, { address: `::ffff:${UP0.host}`, port: 53 }, genuine).kind).toBe('match');
  });
});

describe('in-flight caps', () => {
  test('beyond maxInFlightPerUser a query is answered SERVFAIL at once, with the client ID and question', () => {
    const t = table({ maxInFlightPerUser: 2 });
    admit(t, 'alice', query(1));
    admit(t, 'alice', query(2));
    const r = t.begin('alice', query(0x4242, 'x.test'), 'ctx');
    expect(r.kind).toBe('refused');
    if (r.kind !== 'refused' || r.answer === null) throw new Error('expected a SERVFAIL');
    expect(r.reason).toBe('user_limit');
    expect(r.answer.readUInt16BE(0)).toBe(0x4242);
    expect(r.answer.readUInt16BE(2) & 0x800f).toBe(0x8002); // QR, RCODE 2
    expect(r.answer.subarray(12)).toEqual(query(0x4242, 'x.test').subarray(12));
  });

  test('one user at the limit does not stop another', () => {
    const t = table({ maxInFlightPerUser: 2 });
    admit(t, 'alice', query(1));
    admit(t, 'alice', query(2));
    expect(t.begin('alice', query(3), 'c').kind).toBe('refused');
    expect(t.begin('bob', query(3), 'c').kind).toBe('send');
  });

  test('beyond maxInFlight (all users) queries are refused', () => {
    const t = table({ maxInFlight: 3 });
    for (const u of ['a', 'b', 'c']) admit(t, u, query(1));
    const r = t.begin('d', query(1), 'c');
    expect(r.kind === 'refused' && r.reason).toBe('total_limit');
  });

  test('garbage is refused silently: no answer to a response, a runt or two questions', () => {
    const t = table();
    const twoQuestions = query(1);
    twoQuestions.writeUInt16BE(2, 4);
    for (const bad of [answerTo(query(1)), Buffer.alloc(5), twoQuestions]) {
      expect(t.begin('alice', bad, 'c')).toEqual({ kind: 'refused', reason: 'malformed', answer: null });
    }
  });
});

describe('timeouts', () => {
  test('a query that times out frees its slot', () => {
    const t = table({ maxInFlightPerUser: 1 });
    const q = admit(t, 'alice', query(1), 1, 1000);
    expect(t.begin('alice', query(2), 'c').kind).toBe('refused');
    expect(t.expire(3999)).toEqual({ retry: [], failed: [] });
    expect(t.expire(4000).failed).toEqual([q]);
    expect(t.inFlightFor('alice')).toBe(0);
    expect(t.onAnswer(1, from0, answerTo(q.wire))).toEqual({ kind: 'drop', reason: 'unknown_id' });
    expect(t.begin('alice', query(2), 'c').kind).toBe('send');
  });

  test('a timed-out query moves to the next upstream with a fresh ID; a late answer from the first is dropped', () => {
    const t = table({ upstreams: [UP0, UP1] });
    const q = admit(t, 'alice', query(1), 1, 0);
    const firstWire = Buffer.from(q.wire);
    const { retry } = t.expire(3000);
    expect(retry).toEqual([q]);
    expect(q.upstream).toBe(1);
    t.sent(q, 2, 3000);
    expect(t.onAnswer(1, from0, answerTo(firstWire)).kind).toBe('drop');
    expect(t.inFlightFor('alice')).toBe(1);
    expect(t.onAnswer(2, { address: '2001:db8:0:0::53', port: 5353 }, answerTo(q.wire)).kind).toBe('match');
  });

  test('a query resolving over TCP keeps its slot, matches no UDP answer, and is bounded in time too', () => {
    const t = table({ maxInFlightPerUser: 1 });
    const q = admit(t, 'alice', query(1), 1, 0);
    const wire = Buffer.from(q.wire);
    t.toTcp(q, 100);
    expect(t.waitingOn(1)).toBe(0);
    expect(t.onAnswer(1, from0, answerTo(wire)).kind).toBe('drop');
    expect(t.begin('alice', query(2), 'c').kind).toBe('refused');
    expect(t.expire(100 + 6000).failed).toEqual([q]);
    expect(t.inFlightFor('alice')).toBe(0);
  });
});
