// HTTP/1.1 log parser (RFC 9112) on known-byte exchanges. Every exchange is
// also fed split at every byte boundary and byte by byte: TCP segments and
// TLS records cut messages anywhere, and the records must not change.
import { H1Connection, MAX_PIPELINED_REQUESTS } from '../../../../mitm/http_log/h1';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';
import { byteByByte, c2s, Event, Factory, replay, s2c, splitsAtEveryBoundary } from './helpers';

const fixedClock: Factory = (emit) => new H1Connection({ sniHost: 'sni.example', now: () => 1000, emit, maxHeaderBytes: 4096 });

function rec(partial: Partial<HttpRequestRecord>): HttpRequestRecord {
  return { type: 'http', protocol: 'http/1.1', method: 'GET', host: 'example.com', path: '/', status: 200, bytesUp: 0, bytesDown: 0, durationMs: 0, userAgent: null, ...partial };
}

function expectStableUnderSplits(events: Event[], expected: HttpRequestRecord[], end = true): void {
  expect(replay(fixedClock, events, end)).toEqual(expected);
  expect(replay(fixedClock, byteByByte(events), end)).toEqual(expected);
  for (const split of splitsAtEveryBoundary(events)) expect(replay(fixedClock, split, end)).toEqual(expected);
}

const PIPELINED: Event[] = [
  c2s('GET /a?token=abc123&x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\n\r\n' +
    'POST /login HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n\r\npassword=hunter2' +
    'GET /c HTTP/1.1\r\nHost: example.com\r\n\r\n'),
  s2c('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
    'HTTP/1.1 302 Found\r\nLocation: /home\r\nContent-Length: 0\r\n\r\n' +
    'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n'),
];

const CHUNKED: Event[] = [
  c2s('POST /upload HTTP/1.1\r\nHost: files.example.com\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '4;name=value\r\nWiki\r\n5 ; quoted="a;b"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n'),
  s2c('HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0;final\r\nExpires: never\r\n\r\n'),
];

const HEAD_THEN_GET: Event[] = [
  c2s('HEAD /big HTTP/1.1\r\nHost: example.com\r\n\r\nGET /small HTTP/1.1\r\nHost: example.com\r\n\r\n'),
  s2c('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
];

const NOT_MODIFIED: Event[] = [
  c2s('GET /etag HTTP/1.1\r\nHost: example.com\r\nIf-None-Match: "x"\r\n\r\nGET /next HTTP/1.1\r\nHost: example.com\r\n\r\n'),
  s2c('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 512\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n'),
];

const WEBSOCKET: Event[] = [
  c2s('GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
  s2c('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello'),
  c2s(Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e])),
  s2c('GET / HTTP/1.1\r\n\r\n'), // opaque payload that merely looks like HTTP
];

const CLOSE_DELIMITED: Event[] = [
  c2s('GET /stream HTTP/1.1\r\nHost: example.com\r\n\r\n'),
  s2c('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nfirst part,'),
  s2c(' second part'),
];

describe('HTTP/1.1 exchanges, whole and split at every byte boundary', () => {
  test('keep-alive pipelining: responses pair with requests in order (RFC 9112 §9.3.2)', () => {
    expectStableUnderSplits(PIPELINED, [
      rec({ path: '/a?token=[redacted]&x=[redacted]', userAgent: 'curl/7.88.1', bytesDown: 5 }),
      rec({ method: 'POST', path: '/login', status: 302, bytesUp: 16 }),
      rec({ path: '/c', status: 404, bytesDown: 9 }),
    ]);
  });

  test('chunked bodies with extensions and trailers count only chunk data (§7.1)', () => {
    expectStableUnderSplits(CHUNKED, [
      rec({ method: 'POST', host: 'files.example.com', path: '/upload', status: 201, bytesUp: 23, bytesDown: 26 }),
    ]);
  });

  test('a response to HEAD has no body whatever its Content-Length (§6.3 rule 1)', () => {
    expectStableUnderSplits(HEAD_THEN_GET, [
      rec({ method: 'HEAD', path: '/big' }),
      rec({ path: '/small', bytesDown: 2 }),
    ]);
  });

  test('304 and 204 responses have no body (§6.3 rule 1)', () => {
    expectStableUnderSplits(NOT_MODIFIED, [
      rec({ path: '/etag', status: 304 }),
      rec({ path: '/next', status: 204 }),
    ]);
  });

  test('Upgrade: websocket + 101 gives one upgraded record; later bytes are opaque', () => {
    expectStableUnderSplits(WEBSOCKET, [rec({ host: 'ws.example.com', path: '/chat', status: 101, upgraded: 'websocket' })]);
  });

  test('a response without length is delimited by the connection close (§6.3 rule 8)', () => {
    expectStableUnderSplits(CLOSE_DELIMITED, [rec({ path: '/stream', bytesDown: 23 })]);
  });
});

describe('HTTP/1.1 semantics', () => {
  test('100 Continue is interim: the final response is logged', () => {
    const recs = replay(fixedClock, [
      c2s('PUT /f HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'),
      s2c('HTTP/1.1 100 Continue\r\n\r\n'),
      c2s('abc'),
      s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ]);
    expect(recs).toEqual([rec({ method: 'PUT', path: '/f', bytesUp: 3 })]);
  });

  test('CONNECT 200 makes a tunnel record with host:port and no path (RFC 9110 §9.3.6)', () => {
    const recs = replay(fixedClock, [
      c2s('CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n'),
      s2c('HTTP/1.1 200 Connection Established\r\n\r\n'),
      c2s('\x16\x03\x01 binary tunnel'),
    ]);
    expect(recs).toEqual([rec({ method: 'CONNECT', host: 'db.internal:5432', path: '', upgraded: 'tunnel' })]);
  });

  test('a refused upgrade keeps parsing: bytes the client sent meanwhile are parsed as HTTP', () => {
    const recs = replay(fixedClock, [
      c2s('GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET /after HTTP/1.1\r\nHost: example.com\r\n\r\n'),
      s2c('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ]);
    expect(recs).toEqual([rec({ path: '/ws', status: 426 }), rec({ path: '/after' })]);
  });

  test('bytes held while an upgrade awaits its answer, read a byte at a time, are parsed the same once it is refused', () => {
    const after = 'GET /after HTTP/1.1\r\nHost: example.com\r\nX-Pad: ' + 'p'.repeat(200) + '\r\n\r\n';
    const recs = replay(fixedClock, [
      c2s('GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n'),
      ...[...after].map((ch) => c2s(ch)),
      s2c('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ]);
    expect(recs).toEqual([rec({ path: '/ws', status: 426 }), rec({ path: '/after' })]);
  });

  test('without a Host header the SNI names the host', () => {
    const recs = replay(fixedClock, [c2s('GET / HTTP/1.0\r\n\r\n'), s2c('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    expect(recs[0].host).toBe('sni.example');
  });

  test('an absolute-form target names the host and loses its userinfo (§3.2.2)', () => {
    const recs = replay(fixedClock, [
      c2s('GET http://user:pw@Other.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n'),
      s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ]);
    expect(recs).toEqual([rec({ host: 'other.example:8080', path: '/p?q=[redacted]' })]);
  });

  test('empty lines before a request line are ignored (§2.2)', () => {
    const recs = replay(fixedClock, [c2s('\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    expect(recs).toEqual([rec({})]);
  });

  test('bare LF line endings are accepted (§2.2)', () => {
    const recs = replay(fixedClock, [c2s('GET / HTTP/1.1\nHost: example.com\n\n'), s2c('HTTP/1.1 200 OK\nContent-Length: 2\n\nok')]);
    expect(recs).toEqual([rec({ bytesDown: 2 })]);
  });

  test('duration runs from the first request byte to the last response byte', () => {
    let t = 5000;
    const recs: HttpRequestRecord[] = [];
    const p = new H1Connection({ sniHost: null, now: () => t, emit: (r) => recs.push(r), maxHeaderBytes: 4096 });
    p.clientToServer(Buffer.from('GET / HTTP/1.1\r\nHo'));
    t = 5010;
    p.clientToServer(Buffer.from('st: example.com\r\n\r\n'));
    p.serverToClient(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab'));
    t = 5250;
    p.serverToClient(Buffer.from('cd'));
    expect(recs[0].durationMs).toBe(250);
  });

  test('an unsolicited response (408 before close) produces no record and no error', () => {
    expect(replay(fixedClock, [s2c('HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n')])).toEqual([]);
  });
});

describe('HTTP/1.1 failures stop parsing and never throw', () => {
  test('a request head over maxHeaderBytes gives one record with an error; later bytes are ignored', () => {
    const big = 'GET /x?secret=s HTTP/1.1\r\nHost: example.com\r\nX-Pad: ' + 'a'.repeat(5000) + '\r\n\r\n';
    const recs = replay(fixedClock, [c2s(big), s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), c2s('GET / HTTP/1.1\r\n\r\n')]);
    expect(recs).toEqual([rec({ host: 'sni.example', path: '/x?secret=[redacted]', status: null, error: 'request head exceeds 4096 bytes' })]);
  });

  test('a response head over maxHeaderBytes ends the pending request with an error', () => {
    const recs = replay(fixedClock, [c2s('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), s2c('HTTP/1.1 200 OK\r\nX: ' + 'b'.repeat(5000))]);
    expect(recs).toEqual([rec({ status: null, error: 'response head exceeds 4096 bytes' })]);
  });

  test('the connection closing before the response completes is an error on that request', () => {
    const recs = replay(fixedClock, [c2s('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), s2c('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')]);
    expect(recs).toEqual([rec({ bytesDown: 3, error: 'connection closed before the response completed' })]);
  });

  test('conflicting Content-Length values (a smuggling vector, RFC 9110 §8.6) stop parsing', () => {
    const recs = replay(fixedClock, [c2s('POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef')]);
    expect(recs).toEqual([rec({ method: 'POST', status: null, error: 'invalid request Content-Length' })]);
  });

  test('a request whose Transfer-Encoding does not end in chunked cannot be framed (§6.3 rule 4)', () => {
    const recs = replay(fixedClock, [c2s('POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n')]);
    expect(recs[0].error).toBe('request Transfer-Encoding does not end in chunked');
  });

  test('a malformed chunk size stops parsing with an error record', () => {
    const recs = replay(fixedClock, [c2s('POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')]);
    expect(recs[0].error).toBe('request body: malformed chunk size');
  });

  test('a non-HTTP stream is one error record, not an exception', () => {
    const recs = replay(fixedClock, [c2s('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n'), c2s('more')]);
    expect(recs).toEqual([rec({ method: '', host: 'sni.example', path: '', status: null, error: 'malformed request line' })]);
  });

  test(`more than ${MAX_PIPELINED_REQUESTS} unanswered requests stop parsing (bounded memory)`, () => {
    const recs = replay(fixedClock, [c2s('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'.repeat(MAX_PIPELINED_REQUESTS + 1))]);
    expect(recs).toHaveLength(MAX_PIPELINED_REQUESTS);
    expect(recs.every((r) => r.error === `more than ${MAX_PIPELINED_REQUESTS} requests awaiting responses`)).toBe(true);
  });
});
