// HTTP/2 log parser (RFC 9113) on hand-made frames: one behaviour each.
// Real traffic from node:http2 and curl is in h2_live.test.ts.
import { H2Connection, MAX_TRACKED_STREAMS } from '../../../../mitm/http_log/h2';
import { createHttpLogger } from '../../../../mitm/http_log/logger';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';
import { frame, hpackBlock, hpackSizeUpdate, PREFACE, settings, u32 } from './h2_build';
import { byteByByte, c2s, Event, Factory, replay, s2c, splitsAtEveryBoundary } from './helpers';

const DATA = 0, HEADERS = 1, PRIORITY = 2, RST_STREAM = 3, PUSH_PROMISE = 5, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIO = 0x20;

const h2: Factory = (emit) => new H2Connection({ sniHost: 'sni.example', now: () => 1000, emit, maxHeaderBytes: 4096 });

function req(path: string, method = 'GET', extra: Array<[string, string]> = []): Buffer {
  return hpackBlock([[':method', method], [':scheme', 'https'], [':authority', 'api.example.com'], [':path', path], ['user-agent', 'test/1'], ...extra]);
}
const status = (code: number): Buffer => hpackBlock([[':status', String(code)]]);

function rec(partial: Partial<HttpRequestRecord>): HttpRequestRecord {
  return { type: 'http', protocol: 'h2', method: 'GET', host: 'api.example.com', path: '/', status: 200, bytesUp: 0, bytesDown: 0, durationMs: 0, userAgent: 'test/1', streamId: 1, ...partial };
}

const OPEN: Event[] = [c2s(Buffer.concat([PREFACE, settings([[3, 100]])])), s2c(Buffer.concat([settings(), frame(4, 1, 0)]))];

describe('HTTP/2 streams', () => {
  const exchange: Event[] = [
    ...OPEN,
    c2s(frame(HEADERS, END_HEADERS, 1, req('/items?id=42&sig=abc'))),
    c2s(frame(HEADERS, END_HEADERS, 3, req('/upload', 'POST'))),
    c2s(frame(DATA, END_STREAM, 3, Buffer.from('password=hunter2'))),
    s2c(frame(HEADERS, END_HEADERS, 3, status(201))),
    s2c(frame(HEADERS, END_HEADERS, 1, status(200))),
    s2c(frame(DATA, 0, 1, Buffer.alloc(300))),
    s2c(frame(DATA, END_STREAM, 3, Buffer.alloc(0))),
    s2c(frame(DATA, END_STREAM, 1, Buffer.alloc(20))),
  ];
  const expected = [
    rec({ method: 'POST', path: '/upload', status: 201, bytesUp: 16, streamId: 3 }),
    rec({ path: '/items?id=[redacted]&sig=[redacted]', bytesDown: 320 }),
  ];

  test('concurrent streams are logged when the server ends each one (§8.1)', () => {
    expect(replay(h2, exchange)).toEqual(expected);
  });

  test('records do not change when the bytes are split at any boundary', () => {
    expect(replay(h2, byteByByte(exchange))).toEqual(expected);
    for (const split of splitsAtEveryBoundary(exchange)) expect(replay(h2, split)).toEqual(expected);
  });

  test('padding is not counted as data, on DATA and HEADERS (§6.1, §6.2)', () => {
    const block = req('/p');
    const padded = Buffer.concat([Buffer.from([3]), u32(0), Buffer.from([16]), block, Buffer.alloc(3)]);
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | PADDED | PRIO, 1, padded)),
      c2s(frame(DATA, END_STREAM | PADDED, 1, Buffer.concat([Buffer.from([10]), Buffer.alloc(5), Buffer.alloc(10)]))),
      s2c(frame(HEADERS, END_HEADERS, 1, status(200))),
      s2c(frame(DATA, END_STREAM | PADDED, 1, Buffer.from([0]))),
    ]);
    expect(recs).toEqual([rec({ path: '/p', bytesUp: 5 })]);
  });

  test('a header block split over HEADERS and CONTINUATION frames is joined (§6.10)', () => {
    const block = req('/joined');
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_STREAM, 1, block.subarray(0, 7))),
      c2s(frame(CONTINUATION, 0, 1, block.subarray(7, 20))),
      c2s(frame(CONTINUATION, END_HEADERS, 1, block.subarray(20))),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(204))),
    ]);
    expect(recs).toEqual([rec({ path: '/joined', status: 204 })]);
  });

  test('a header block in a frame per byte is joined the same (the copies kept are merged every 64)', () => {
    const path = `/in-pieces/${'x'.repeat(100)}`;
    const block = req(path);
    const pieces = [...block].map((byte, i) => c2s(frame(i === 0 ? HEADERS : CONTINUATION, (i === 0 ? END_STREAM : 0) | (i === block.length - 1 ? END_HEADERS : 0), 1, Buffer.from([byte]))));
    expect(pieces.length).toBeGreaterThan(2 * 64);
    const recs = replay(h2, [...OPEN, ...pieces, s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(204)))]);
    expect(recs).toEqual([rec({ path, status: 204 })]);
  });

  test('interim 1xx responses are skipped and trailers end the stream (§8.1)', () => {
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/t'))),
      s2c(frame(HEADERS, END_HEADERS, 1, status(103))),
      s2c(frame(HEADERS, END_HEADERS, 1, status(200))),
      s2c(frame(DATA, 0, 1, Buffer.alloc(7))),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, hpackBlock([['grpc-status', '0']]))),
    ]);
    expect(recs).toEqual([rec({ path: '/t', bytesDown: 7 })]);
  });

  test('RST_STREAM ends a stream with an error naming the code (§6.4)', () => {
    const recs = replay(h2, [...OPEN, c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/slow'))), c2s(frame(RST_STREAM, 0, 1, u32(0x8)))]);
    expect(recs).toEqual([rec({ path: '/slow', status: null, error: 'stream reset by client: CANCEL' })]);
  });

  test('GOAWAY fails only streams above its last-stream-id; the rest complete (§6.8)', () => {
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/one'))),
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 3, req('/three'))),
      s2c(frame(GOAWAY, 0, 0, u32(1, 0))),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(200))),
    ]);
    expect(recs).toEqual([
      rec({ path: '/three', status: null, streamId: 3, error: 'not processed: GOAWAY from server (NO_ERROR)' }),
      rec({ path: '/one' }),
    ]);
  });

  test('the connection ending leaves open streams with an error', () => {
    const recs = replay(h2, [...OPEN, c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/x'))), s2c(frame(HEADERS, END_HEADERS, 1, status(200)))]);
    expect(recs).toEqual([rec({ path: '/x', error: 'connection closed before the response completed' })]);
  });

  test('a pushed response is logged as its own request with the promised even stream id (§8.4)', () => {
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/page'))),
      s2c(frame(PUSH_PROMISE, END_HEADERS, 1, Buffer.concat([u32(2), req('/style.css')]))),
      s2c(frame(HEADERS, END_HEADERS, 1, status(200))),
      s2c(frame(DATA, END_STREAM, 1, Buffer.alloc(100))),
      s2c(frame(HEADERS, END_HEADERS, 2, status(200))),
      s2c(frame(DATA, END_STREAM, 2, Buffer.alloc(40))),
    ]);
    expect(recs).toEqual([rec({ path: '/page', bytesDown: 100 }), rec({ path: '/style.css', bytesDown: 40, streamId: 2 })]);
  });

  test('extended CONNECT for WebSocket (RFC 8441) is logged as upgraded once the server accepts', () => {
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS, 1, req('/chat', 'CONNECT', [[':protocol', 'websocket']]))),
      s2c(frame(HEADERS, END_HEADERS, 1, status(200))),
      c2s(frame(DATA, 0, 1, Buffer.alloc(50))),
    ]);
    expect(recs).toEqual([rec({ method: 'CONNECT', path: '/chat', upgraded: 'websocket' })]);
  });

  test('control frames (PRIORITY, PING, WINDOW_UPDATE, unknown types) do not disturb streams', () => {
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/'))),
      c2s(Buffer.concat([frame(PRIORITY, 0, 1, Buffer.alloc(5)), frame(PING, 0, 0, Buffer.alloc(8)), frame(WINDOW_UPDATE, 0, 0, u32(65535)), frame(0xfa, 0xff, 1, Buffer.alloc(33))])),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(200))),
    ]);
    expect(recs).toEqual([rec({})]);
  });

  test(`streams beyond ${MAX_TRACKED_STREAMS} concurrent ones get an immediate record and are not tracked`, () => {
    const opens: Event[] = [];
    for (let i = 0; i <= MAX_TRACKED_STREAMS; i++) opens.push(c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, req('/n'))));
    const recs = replay(h2, [...OPEN, ...opens], false);
    expect(recs).toEqual([rec({ path: '/n', status: null, streamId: 1 + 2 * MAX_TRACKED_STREAMS, error: `not tracked: more than ${MAX_TRACKED_STREAMS} concurrent streams` })]);
  });
});

describe('HPACK state across the connection', () => {
  test('the dynamic table carries across requests (one decoder per direction)', () => {
    // Literal with incremental indexing of :authority, then an indexed reference to it (index 62).
    const first = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x41, 0x0f]), Buffer.from('www.example.com')]);
    const second = Buffer.from([0x82, 0x87, 0x84, 0xbe]);
    const recs = replay(h2, [
      ...OPEN,
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, first)),
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 3, second)),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0x88]))),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 3, Buffer.from([0x88]))),
    ]);
    expect(recs.map((r) => r.host)).toEqual(['www.example.com', 'www.example.com']);
  });

  test('SETTINGS_HEADER_TABLE_SIZE from the client allows a larger server table (§6.5.2)', () => {
    const events = (clientSetting: boolean): Event[] => [
      c2s(Buffer.concat([PREFACE, settings(clientSetting ? [[1, 8192]] : [])])),
      c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/'))),
      s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([hpackSizeUpdate(8192), status(200)]))),
    ];
    expect(replay(h2, events(true))).toEqual([rec({})]);
    expect(replay(h2, events(false))[0].error).toBe('server: COMPRESSION_ERROR: table size update to 8192 above the allowed 4096');
  });
});

describe('HTTP/2 protocol violations stop parsing with errors, never throw', () => {
  const cases: Array<[string, Event[]]> = [
    ['a frame between HEADERS and CONTINUATION (§6.10)', [c2s(frame(HEADERS, 0, 3, req('/'))), c2s(frame(PING, 0, 0, Buffer.alloc(8)))]],
    ['DATA on stream 0 (§6.1)', [c2s(frame(DATA, 0, 0, Buffer.alloc(1)))]],
    ['padding longer than the frame (§6.1)', [c2s(frame(DATA, PADDED, 1, Buffer.from([9, 0])))]],
    ['a PING that is not 8 bytes (§6.7)', [c2s(frame(PING, 0, 0, Buffer.alloc(7)))]],
    ['SETTINGS length not a multiple of 6 (§6.5)', [c2s(frame(4, 0, 0, Buffer.alloc(5)))]],
    ['a client-opened even stream (§5.1.1)', [c2s(frame(HEADERS, END_HEADERS, 4, req('/')))]],
    ['PUSH_PROMISE from a client (§8.4)', [c2s(frame(PUSH_PROMISE, END_HEADERS, 1, Buffer.concat([u32(2), req('/')])))]],
    ['an HPACK index past the tables (RFC 7541 §2.3.3)', [c2s(frame(HEADERS, END_HEADERS, 3, Buffer.from([0xff, 0x7f])))]],
    ['a header block over maxHeaderBytes', [c2s(frame(HEADERS, END_HEADERS, 3, req('/', 'GET', [['x', 'y'.repeat(5000)]])))]],
  ];
  test.each(cases)('%s', (_name, bad) => {
    const recs = replay(h2, [...OPEN, c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/pending'))), ...bad, s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(200)))]);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ path: '/pending', status: null });
    expect(recs[0].error).toMatch(/^client: /);
  });

  test('a wrong client preface stops parsing: later valid frames give no record (§3.4)', () => {
    const recs = replay(h2, [c2s('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), c2s(frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/'))), s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(200)))]);
    expect(recs).toEqual([]);
  });
});

describe('createHttpLogger protocol selection', () => {
  const run = (alpn: string | null, events: Event[]): HttpRequestRecord[] =>
    replay((emit) => createHttpLogger({ alpn, sniHost: 'sni.example', now: () => 1000, emit }), events);
  const h2Exchange: Event[] = [
    s2c(settings()), // a server may speak first; held until the client's bytes decide
    c2s(PREFACE.subarray(0, 10)),
    c2s(Buffer.concat([PREFACE.subarray(10), settings(), frame(HEADERS, END_HEADERS | END_STREAM, 1, req('/pk'))])),
    s2c(frame(HEADERS, END_HEADERS | END_STREAM, 1, status(200))),
  ];

  test('ALPN h2 selects HTTP/2', () => {
    expect(run('h2', h2Exchange.slice(1))).toEqual([rec({ path: '/pk' })]);
  });
  test('without ALPN the HTTP/2 preface switches to HTTP/2 (prior knowledge, RFC 9113 §3.3)', () => {
    expect(run(null, h2Exchange)).toEqual([rec({ path: '/pk' })]);
  });
  test('http/1.1 ALPN with an ordinary request stays HTTP/1.1', () => {
    const recs = run('http/1.1', [c2s('PUT / HTTP/1.1\r\nHost: a.example\r\n\r\n'), s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    expect(recs).toMatchObject([{ protocol: 'http/1.1', method: 'PUT', host: 'a.example' }]);
  });
  test('a stream that starts like the preface and diverges is HTTP/1.1', () => {
    const recs = run(null, [c2s('PRI'), c2s('NT / HTTP/1.1\r\n\r\n'), s2c('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    expect(recs).toMatchObject([{ protocol: 'http/1.1', method: 'PRINT' }]);
  });
  test('a non-HTTP ALPN produces no records', () => {
    expect(run('imap', [c2s('a1 LOGIN user secret\r\n')])).toEqual([]);
  });
});
