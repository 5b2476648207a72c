import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ClientHelloInfo, ClientHelloReader, ClientHelloResult, isGrease, MAX_CLIENT_HELLO_RECORDS } from '../../../mitm/client_hello';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'client_hello');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.bin`));

const TLS12 = 0x0303;
const TLS13 = 0x0304;

function readAll(chunks: Buffer[]): ClientHelloResult {
  const r = new ClientHelloReader();
  let last: ClientHelloResult = { kind: 'need_more' };
  for (const c of chunks) last = r.push(c);
  return last;
}

function helloOf(result: ClientHelloResult): ClientHelloInfo {
  if (result.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(result)}`);
  return result.hello;
}

// --- builders for synthetic hellos -------------------------------------------

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function vec16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}

function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

const sniExt = (name: string): Buffer => ext(0, vec16(Buffer.from([0]), vec16(Buffer.from(name, 'latin1'))));
const alpnExt = (names: Buffer[]): Buffer => ext(16, vec16(...names.map((n) => Buffer.concat([Buffer.from([n.length]), n]))));
const versionsExt = (vs: number[]): Buffer => {
  const list = Buffer.concat(vs.map(u16));
  return ext(43, Buffer.concat([Buffer.from([list.length]), list]));
};

interface BodyOpts {
  ciphers?: number[];
  compression?: number[];
  sessionId?: number;
  extensions?: Buffer[] | null; // null: no extensions block at all
}

function helloBody(o: BodyOpts = {}): Buffer {
  const sid = o.sessionId ?? 32;
  const parts = [
    u16(TLS12),
    Buffer.alloc(32, 0x11),
    Buffer.from([sid]),
    Buffer.alloc(sid, 0x22),
    vec16(...(o.ciphers ?? [0x1301]).map(u16)),
    Buffer.from([(o.compression ?? [0]).length, ...(o.compression ?? [0])]),
  ];
  if (o.extensions !== null) parts.push(vec16(...(o.extensions ?? [sniExt('example.test')])));
  return Buffer.concat(parts);
}

function handshake(body: Buffer, type = 1): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}

function record(payload: Buffer, type = 22, version = 0x0301): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(payload.length, 3);
  return Buffer.concat([h, payload]);
}

const wrap = (o: BodyOpts = {}): Buffer => record(handshake(helloBody(o)));

/** The handshake message carried by a fixture's records, whatever their number. */
function handshakeOf(stream: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let p = 0; p + 5 <= stream.length; p += 5 + stream.readUInt16BE(p + 3)) parts.push(stream.subarray(p + 5, p + 5 + stream.readUInt16BE(p + 3)));
  return Buffer.concat(parts);
}

/** Re-frames a handshake message into records of the given payload sizes (the last takes the rest). */
function reframe(msg: Buffer, sizes: number[]): Buffer {
  const out: Buffer[] = [];
  let p = 0;
  for (const n of sizes) {
    out.push(record(msg.subarray(p, p + n)));
    p += n;
  }
  out.push(record(msg.subarray(p)));
  return Buffer.concat(out);
}

function expectFailure(result: ClientHelloResult, kind: 'not_tls' | 'error', reason: string): void {
  expect(result.kind).toBe(kind);
  if (result.kind === 'not_tls' || result.kind === 'error') {
    expect(result.reason).toBe(reason);
    expect(result.detail.length).toBeGreaterThan(0);
  }
}

// --- real clients ----------------------------------------------------------

interface Expected {
  sni: string | null;
  alpn: string[];
  supportedVersions: number[];
  hasEch?: boolean;
}

const EXPECTED: Record<string, Expected> = {
  'curl_http1.1': { sni: 'curl-h1.sightline.test', alpn: ['http/1.1'], supportedVersions: [TLS13, TLS12, 0x0302, 0x0301] },
  curl_http2: { sni: 'curl-h2.sightline.test', alpn: ['h2', 'http/1.1'], supportedVersions: [TLS13, TLS12, 0x0302, 0x0301] },
  openssl_tls12: { sni: 'openssl-tls12.sightline.test', alpn: [], supportedVersions: [] },
  openssl_tls13: { sni: 'openssl-tls13.sightline.test', alpn: [], supportedVersions: [TLS13] },
  openssl_no_servername: { sni: null, alpn: [], supportedVersions: [TLS13, TLS12, 0x0302, 0x0301] },
  openssl_alpn: { sni: 'openssl-alpn.sightline.test', alpn: ['h2', 'http/1.1'], supportedVersions: [TLS13, TLS12, 0x0302, 0x0301] },
  node_tls: { sni: 'node.sightline.test', alpn: ['h2', 'http/1.1'], supportedVersions: [TLS13, TLS12] },
  chromium: { sni: 'chromium.sightline.test', alpn: ['h2', 'http/1.1'], supportedVersions: [TLS13, TLS12], hasEch: true },
};
const NAMES = Object.keys(EXPECTED);

describe('real ClientHellos', () => {
  test.each(NAMES)('%s parses with the expected SNI, ALPN and versions', (name) => {
    const bytes = fixture(name);
    const hello = helloOf(new ClientHelloReader().push(bytes));
    const want = EXPECTED[name];
    expect(hello.sni).toBe(want.sni);
    expect(hello.sniProblem).toBeNull();
    expect(hello.alpn).toEqual(want.alpn);
    expect(hello.supportedVersions).toEqual(want.supportedVersions);
    expect(hello.legacyVersion).toBe(TLS12);
    expect(hello.hasEch).toBe(want.hasEch ?? false);
    expect(hello.recordBytes).toBe(bytes.length);
    expect(hello.extensions.includes(0)).toBe(want.sni !== null);
  });

  test.each(NAMES)('%s gives the same result split at every byte boundary (TCP segmentation)', (name) => {
    const bytes = fixture(name);
    const whole = readAll([bytes]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = new ClientHelloReader();
      expect(r.push(bytes.subarray(0, cut))).toEqual({ kind: 'need_more' });
      expect(r.push(bytes.subarray(cut))).toEqual(whole);
    }
  });

  test.each(NAMES)('%s gives the same result fed one byte at a time', (name) => {
    const bytes = fixture(name);
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    expect(readAll(chunks)).toEqual(readAll([bytes]));
  });

  test.each(NAMES)('%s parses when re-framed into 2 and 3 records (RFC 8446 §5.1: a message may span records)', (name) => {
    const msg = handshakeOf(fixture(name));
    const whole = helloOf(readAll([fixture(name)]));
    for (const sizes of [[100], [1], [2], [3], [msg.length - 1], [50, 100], [1, 2], [4, msg.length - 5]]) {
      const stream = reframe(msg, sizes);
      const hello = helloOf(readAll([stream]));
      expect({ ...hello, recordBytes: 0 }).toEqual({ ...whole, recordBytes: 0 });
      expect(hello.recordBytes).toBe(stream.length);
    }
  });

  test('chromium hello is larger than one 1500-byte segment and carries GREASE that is removed', () => {
    const bytes = fixture('chromium');
    expect(bytes.length).toBeGreaterThan(1500);
    // Independent read of the raw cipher list (single record): past record and
    // handshake headers, version, random and the session id.
    const csAt = 5 + 4 + 2 + 32 + 1 + bytes[5 + 4 + 2 + 32];
    const raw = bytes.subarray(csAt + 2, csAt + 2 + bytes.readUInt16BE(csAt));
    const rawSuites = Array.from({ length: raw.length / 2 }, (_, i) => raw.readUInt16BE(i * 2));
    expect(rawSuites.some(isGrease)).toBe(true);
    const hello = helloOf(readAll([bytes]));
    expect(hello.cipherSuites).toEqual(rawSuites.filter((v) => !isGrease(v)));
    expect(hello.extensions.some(isGrease)).toBe(false);
  });

  test('bytes after the ClientHello (0-RTT data) are buffered for replay but not counted in recordBytes', () => {
    const bytes = fixture('node_tls');
    const early = record(Buffer.from('early'), 23, 0x0303);
    const r = new ClientHelloReader();
    const res = r.push(Buffer.concat([bytes, early]));
    expect(helloOf(res).recordBytes).toBe(bytes.length);
    expect(r.push(Buffer.from('more'))).toEqual(res);
    expect(r.buffered()).toEqual(Buffer.concat([bytes, early, Buffer.from('more')]));
    expect(r.bufferedBytes).toBe(bytes.length + early.length + 4);
  });
});

// --- GREASE (RFC 8701) -----------------------------------------------------

describe('GREASE', () => {
  test('isGrease accepts exactly the 16 reserved values 0x?A?A', () => {
    const all = Array.from({ length: 0x10000 }, (_, v) => v).filter(isGrease);
    expect(all).toEqual(Array.from({ length: 16 }, (_, i) => i * 0x1010 + 0x0a0a));
  });

  test('GREASE cipher suites, extensions, versions and ALPN ids are ignored', () => {
    const hello = helloOf(
      readAll([
        wrap({
          ciphers: [0x2a2a, 0x1301, 0xfafa],
          extensions: [
            ext(0x0a0a, Buffer.alloc(0)),
            sniExt('a.test'),
            versionsExt([0x5a5a, TLS13]),
            alpnExt([Buffer.from([0x3a, 0x3a]), Buffer.from('h2')]),
            ext(0x1a1a, Buffer.from([0])),
          ],
        }),
      ]),
    );
    expect(hello.cipherSuites).toEqual([0x1301]);
    expect(hello.extensions).toEqual([0, 43, 16]);
    expect(hello.supportedVersions).toEqual([TLS13]);
    expect(hello.alpn).toEqual(['h2']);
  });
});

// --- SNI (RFC 6066 §3) -----------------------------------------------------

describe('server_name', () => {
  const sniOf = (name: string): ClientHelloInfo => helloOf(readAll([wrap({ extensions: [sniExt(name)] })]));

  test('host_name is lowercased', () => {
    expect(sniOf('WWW.Example.TEST').sni).toBe('www.example.test');
  });

  test.each(['127.0.0.1', '::1', '[::1]', '10.1'])('IP literal %s is not an SNI (RFC 6066 §3)', (ip) => {
    expect(sniOf(ip)).toMatchObject({ sni: null, sniProblem: 'ip_literal' });
  });

  test.each(['example.test.', 'a..b', 'sp ace.test', 'caf\u00e9.test', `${'a'.repeat(64)}.test`, 'a.'.repeat(127) + 'a'])(
    'invalid DNS name %j is flagged, not returned',
    (bad) => {
      expect(sniOf(bad)).toMatchObject({ sni: null, sniProblem: 'invalid_host_name' });
    },
  );

  test('two host_name entries are rejected (RFC 6066 §3: one name per name_type)', () => {
    const two = ext(0, vec16(Buffer.from([0]), vec16(Buffer.from('a.test')), Buffer.from([0]), vec16(Buffer.from('b.test'))));
    expectFailure(readAll([wrap({ extensions: [two] })]), 'error', 'bad_server_name');
  });

  test('an empty server_name extension in a ClientHello is malformed', () => {
    expectFailure(readAll([wrap({ extensions: [ext(0, Buffer.alloc(0))] })]), 'error', 'bad_server_name');
  });
});

// --- streams that are not a ClientHello -------------------------------------

describe('rejections', () => {
  test('plain HTTP on port 443 is not_tls plain_http, regardless of segmentation', () => {
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expectFailure(readAll([req]), 'not_tls', 'plain_http');
    expectFailure(readAll(Array.from(req, (b) => Buffer.from([b]))), 'not_tls', 'plain_http');
  });

  test('the HTTP/2 prior-knowledge preface is plain HTTP', () => {
    expectFailure(readAll([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')]), 'not_tls', 'plain_http');
  });

  test('random bytes get a not_tls or error verdict from their first bytes', () => {
    let seed = 7;
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.alloc(64);
      for (let j = 0; j < junk.length; j++) junk[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      if (junk[0] === 22) junk[0] = 0x42;
      const r = readAll([junk]);
      expect(['not_tls', 'error']).toContain(r.kind);
    }
  });

  test('an SSLv2-format CLIENT-HELLO is not_tls sslv2_client_hello (RFC 6176)', () => {
    const v2 = Buffer.from('802e0100020015000000100700c0050080030080010080080080060040040080020080', 'hex');
    expectFailure(readAll([v2]), 'not_tls', 'sslv2_client_hello');
  });

  test('a TLS alert record first is an unexpected record type', () => {
    expectFailure(readAll([record(Buffer.from([2, 40]), 21, 0x0303)]), 'error', 'unexpected_record_type');
  });

  test('a record longer than 2^14 is record_overflow (RFC 8446 §5.1)', () => {
    expectFailure(readAll([Buffer.from([22, 3, 1, 0x40, 0x01])]), 'error', 'record_overflow');
  });

  test('a ClientHello declaring more than the limit fails on its header, before the bytes arrive', () => {
    expectFailure(readAll([Buffer.from([22, 3, 1, 0x00, 0x04, 1, 0x01, 0x00, 0x00])]), 'error', 'client_hello_too_large');
  });

  test('a ClientHello of exactly the size limit parses, reassembled from two maximal records', () => {
    const limit = 16 * 1024;
    const base = helloBody({ extensions: [sniExt('big.test')] });
    const padding = ext(21, Buffer.alloc(limit - base.length - 4)); // RFC 7685 padding
    const body = helloBody({ extensions: [sniExt('big.test'), padding] });
    expect(body.length).toBe(limit);
    const stream = reframe(handshake(body), [16384]);
    const r = new ClientHelloReader({ maxClientHelloLen: limit });
    expect(r.push(stream.subarray(0, stream.length - 1))).toEqual({ kind: 'need_more' });
    expect(helloOf(r.push(stream.subarray(stream.length - 1)))).toMatchObject({ sni: 'big.test', recordBytes: stream.length });
    expectFailure(new ClientHelloReader({ maxClientHelloLen: limit - 1 }).push(stream), 'error', 'client_hello_too_large');
  });

  test('a zero-length handshake record is rejected (RFC 8446 §5.1)', () => {
    expectFailure(readAll([record(Buffer.alloc(0))]), 'error', 'empty_record');
  });

  test('a record header with major version other than 3 is not_tls', () => {
    expectFailure(readAll([Buffer.from([22, 0x47, 0x45, 0x54, 0x20])]), 'not_tls', 'bad_record_version');
  });

  test('another record type inside a fragmented ClientHello is rejected (RFC 8446 §5.1: no interleaving)', () => {
    const msg = handshake(helloBody());
    const stream = Buffer.concat([record(msg.subarray(0, 10)), record(Buffer.from([1]), 20), record(msg.subarray(10))]);
    expectFailure(readAll([stream]), 'error', 'unexpected_record_type');
  });

  test('a first handshake message other than ClientHello is rejected', () => {
    expectFailure(readAll([record(handshake(helloBody(), 2))]), 'error', 'unexpected_handshake_type');
  });

  test('a ClientHello fragmented into more than the record bound is rejected', () => {
    const msg = handshake(helloBody());
    const stream = reframe(msg, Array<number>(MAX_CLIENT_HELLO_RECORDS).fill(1));
    expectFailure(readAll([stream]), 'error', 'too_many_records');
  });

  test('handshake bytes after the ClientHello in its record are rejected', () => {
    expectFailure(readAll([record(Buffer.concat([handshake(helloBody()), Buffer.from([0])]))]), 'error', 'trailing_handshake_data');
  });

  test('an extension whose length runs past the block is truncated_extension', () => {
    const body = helloBody({ extensions: [sniExt('a.test')] });
    body.writeUInt16BE(0xff, body.length - sniExt('a.test').length + 2);
    expectFailure(readAll([record(handshake(body))]), 'error', 'truncated_extension');
  });

  test('an extension header cut short is truncated_extension', () => {
    expectFailure(readAll([wrap({ extensions: [sniExt('a.test'), Buffer.from([0, 16])] })]), 'error', 'truncated_extension');
  });

  test('an extensions block length that disagrees with the body is rejected', () => {
    const body = Buffer.concat([helloBody(), Buffer.from([0])]);
    expectFailure(readAll([record(handshake(body))]), 'error', 'extensions_length_mismatch');
  });

  test('a duplicated extension is rejected (RFC 8446 §4.2)', () => {
    expectFailure(readAll([wrap({ extensions: [versionsExt([TLS13]), versionsExt([TLS13])] })]), 'error', 'duplicate_extension');
  });

  test('pre_shared_key that is not last is rejected (RFC 8446 §4.2.11)', () => {
    expectFailure(readAll([wrap({ extensions: [ext(41, Buffer.alloc(4)), sniExt('a.test')] })]), 'error', 'psk_not_last');
  });

  test('a session id longer than 32 bytes is rejected', () => {
    expectFailure(readAll([wrap({ sessionId: 33 })]), 'error', 'bad_session_id_length');
  });

  test('compression methods without null are rejected (RFC 5246 §7.4.1.2)', () => {
    expectFailure(readAll([wrap({ compression: [1] })]), 'error', 'bad_compression_methods');
  });

  test('an odd cipher_suites length is rejected', () => {
    const body = helloBody({ ciphers: [0x1301, 0x1302] });
    body.writeUInt16BE(3, 2 + 32 + 1 + 32);
    expectFailure(readAll([record(handshake(body))]), 'error', 'bad_cipher_suites_length');
  });

  test('malformed ALPN and supported_versions lists are rejected', () => {
    expectFailure(readAll([wrap({ extensions: [alpnExt([Buffer.alloc(0)])] })]), 'error', 'bad_alpn');
    expectFailure(readAll([wrap({ extensions: [ext(43, Buffer.from([3, 3, 4, 3]))] })]), 'error', 'bad_supported_versions');
  });

  test('a TLS 1.2 ClientHello with no extensions block parses (RFC 5246 §7.4.1.2)', () => {
    expect(helloOf(readAll([wrap({ extensions: null })]))).toMatchObject({ sni: null, extensions: [], alpn: [] });
  });

  test('early_data is reported', () => {
    expect(helloOf(readAll([wrap({ extensions: [ext(42, Buffer.alloc(0))] })])).hasEarlyData).toBe(true);
  });

  test('a stream that ends mid-ClientHello is an error, not a wait forever', () => {
    const r = new ClientHelloReader();
    expect(r.push(fixture('node_tls').subarray(0, 100))).toEqual({ kind: 'need_more' });
    expectFailure(r.end(), 'error', 'eof_before_client_hello');
  });

  test('a verdict is final: later pushes return it and are still buffered', () => {
    const r = new ClientHelloReader();
    const first = r.push(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(r.push(fixture('node_tls'))).toBe(first);
    expect(r.bufferedBytes).toBe(16 + fixture('node_tls').length);
  });
});

// --- robustness ------------------------------------------------------------

describe('fuzz', () => {
  test('20,000 random mutations of the fixtures never throw, stay within the byte bound, and end() gives a verdict', () => {
    let s = 0x9e3779b9;
    const rnd = (n: number): number => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) % n;
    };
    const inputs = NAMES.map(fixture);
    const kinds = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const src = inputs[rnd(inputs.length)];
      let m = Buffer.from(src);
      const edits = 1 + rnd(4);
      for (let e = 0; e < edits; e++) {
        const at = rnd(m.length);
        const op = rnd(4);
        if (op === 0) m[at] = rnd(256);
        else if (op === 1) m[at] ^= 1 << rnd(8);
        else if (op === 2) m = m.subarray(0, at);
        else m = Buffer.concat([m.subarray(0, at), Buffer.from([rnd(256), rnd(256)]), m.subarray(at)]);
        if (m.length === 0) break;
      }
      const r = new ClientHelloReader();
      let res: ClientHelloResult = { kind: 'need_more' };
      for (let p = 0; p < m.length && res.kind === 'need_more'; ) {
        const n = 1 + rnd(600);
        res = r.push(m.subarray(p, p + n));
        p += n;
        if (res.kind === 'need_more') expect(r.bufferedBytes).toBeLessThanOrEqual(r.maxStreamBytes);
      }
      const final = r.end();
      expect(final.kind).not.toBe('need_more');
      kinds.add(final.kind === 'done' || final.kind === 'need_more' ? final.kind : `${final.kind}:${final.reason}`);
    }
    // The mutations reach deep into the parser, not only the record header.
    expect(kinds.has('done')).toBe(true);
    expect([...kinds].filter((k) => k.startsWith('error:')).length).toBeGreaterThan(5);
  });
});
