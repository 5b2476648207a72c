// session and dns records: what a device's tunnel did and what it looked up,
// attributed to the user and device. A rekey is not a new session; a roam is
// recorded only for a session that is up.
import { DnsLog, dnsQuestion } from '../../../../vpn/logs/dns_log';
import { SessionLog } from '../../../../vpn/logs/session_log';

interface Written { user: string; peer: string; type: string; fields: Record<string, unknown>; device?: string }

class Sink {
  readonly all: Written[] = [];
  write(user: string, peer: string, type: string, fields: Record<string, unknown> = {}, device?: string): void {
    this.all.push({ user, peer, type, fields, device });
  }
}

const laptop = { id: 'KEY-L', user: 'alice', device: 'laptop' };

describe('session records', () => {
  test('up once per session (rekeys are not new sessions), down with its reason and duration', () => {
    const sink = new Sink();
    let now = 1000;
    const s = new SessionLog(sink, () => now);
    s.handshake(laptop, '198.51.100.7:40000');
    s.handshake(laptop, '198.51.100.7:40000');
    now = 4000;
    s.ended(laptop, 'session_expired');
    expect(sink.all).toEqual([
      { user: 'alice', peer: 'KEY-L', type: 'session', device: 'laptop', fields: { event: 'up', endpoint: '198.51.100.7:40000' } },
      { user: 'alice', peer: 'KEY-L', type: 'session', device: 'laptop', fields: { event: 'down', reason: 'session_expired', durationMs: 3000 } },
    ]);
  });

  test('a roam names both endpoints; the first endpoint of a session is not a roam', () => {
    const sink = new Sink();
    const s = new SessionLog(sink);
    s.roamed(laptop, null, '198.51.100.7:40000');
    s.handshake(laptop, '198.51.100.7:40000');
    s.roamed(laptop, '198.51.100.7:40000', '203.0.113.9:5555');
    expect(sink.all.map((r) => r.fields)).toEqual([
      { event: 'up', endpoint: '198.51.100.7:40000' },
      { event: 'roam', endpoint: '203.0.113.9:5555', from: '198.51.100.7:40000' },
    ]);
  });

  test('a device alternating its source port on every packet writes a few roam records, not one per packet; the next names how many were left out', () => {
    const sink = new Sink();
    let mono = 0;
    const s = new SessionLog(sink, Date.now, () => mono);
    s.handshake(laptop, '198.51.100.7:40000');
    for (let i = 0; i < 10_000; i++) s.roamed(laptop, `198.51.100.7:${40000 + (i % 2)}`, `198.51.100.7:${40001 - (i % 2)}`);
    const roams = () => sink.all.filter((r) => r.fields.event === 'roam');
    expect(roams()).toHaveLength(20);
    expect(roams().every((r) => r.fields.suppressed === undefined)).toBe(true);
    mono += 1000;
    s.roamed(laptop, '198.51.100.7:40000', '203.0.113.9:5555');
    expect(roams().at(-1)?.fields).toEqual({ event: 'roam', endpoint: '203.0.113.9:5555', from: '198.51.100.7:40000', suppressed: 10_000 - 20 });
  });

  test('a device that expires gets an expired record, connected or not; down is not repeated', () => {
    const sink = new Sink();
    const s = new SessionLog(sink);
    s.handshake(laptop, null);
    s.expired(laptop);
    s.ended(laptop, 'session_expired');
    s.expired({ id: 'KEY-P', user: 'alice', device: 'phone' });
    expect(sink.all.map((r) => [r.device, r.fields.event])).toEqual([['laptop', 'up'], ['laptop', 'expired'], ['phone', 'expired']]);
  });

  test('a clean stop records every open session as down (shutdown)', () => {
    const sink = new Sink();
    const s = new SessionLog(sink);
    const phone = { id: 'KEY-P', user: 'alice', device: 'phone' };
    s.handshake(laptop, null);
    s.shutdown([laptop, phone]);
    expect(sink.all.map((r) => [r.device, r.fields.event, r.fields.reason])).toEqual([['laptop', 'up', undefined], ['laptop', 'down', 'shutdown']]);
    expect(s.connected).toBe(0);
  });
});

/** A DNS query for `name` and `type` (RFC 1035 §4.1). */
function query(name: string, type: number, id = 0x1234): Buffer {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
}

function answerTo(q: Buffer, rcode: number, ancount: number): Buffer {
  const a = Buffer.from(q);
  a.writeUInt16BE(0x8180 | rcode, 2);
  a.writeUInt16BE(ancount, 6);
  return a;
}

describe('dns records', () => {
  test('name, type, rcode, answer count, upstream and latency', () => {
    const sink = new Sink();
    const q = query('intranet.corp.test', 28);
    new DnsLog(sink).exchange(laptop, dnsQuestion(q), { answer: answerTo(q, 0, 2), upstream: { host: '10.0.0.53', port: 53 } }, 3.26);
    expect(sink.all).toEqual([{
      user: 'alice', peer: 'KEY-L', type: 'dns', device: 'laptop',
      fields: { name: 'intranet.corp.test', qtype: 'AAAA', rcode: 'NOERROR', answers: 2, upstream: '10.0.0.53:53', latencyMs: 3.3 },
    }]);
  });

  test('NXDOMAIN, an unnamed type, an IPv6 upstream', () => {
    const sink = new Sink();
    const q = query('nope.test', 4242);
    new DnsLog(sink).exchange(laptop, dnsQuestion(q), { answer: answerTo(q, 3, 0), upstream: { host: 'fd00::53', port: 5353 } }, 1);
    expect(sink.all[0].fields).toMatchObject({ name: 'nope.test', qtype: 'TYPE4242', rcode: 'NXDOMAIN', answers: 0, upstream: '[fd00::53]:5353' });
  });

  test('no upstream answered: TIMEOUT with no upstream', () => {
    const sink = new Sink();
    new DnsLog(sink).exchange(laptop, dnsQuestion(query('slow.test', 1)), { answer: null, upstream: null }, 3000);
    expect(sink.all[0].fields).toMatchObject({ name: 'slow.test', qtype: 'A', rcode: 'TIMEOUT', answers: 0, upstream: null });
  });

  test('names with unprintable bytes are escaped, never written raw', () => {
    const q = query('x.test', 1);
    q[13] = 0x0a; // the label "x" becomes a newline
    expect(dnsQuestion(q)?.name).toBe('\\010.test');
  });

  test.each([
    ['too short', Buffer.alloc(5)],
    ['no question', Buffer.from([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['a label running past the end', Buffer.concat([query('a.test', 1).subarray(0, 12), Buffer.from([40, 0x61])])],
    ['a compression pointer', Buffer.concat([query('a.test', 1).subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])],
  ])('an unreadable question (%s) gives null, not an exception', (_what, msg) => {
    expect(dnsQuestion(msg)).toBeNull();
  });
});
