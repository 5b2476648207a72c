// RFC 7541 Appendix C examples: exact bytes, decoded header lists and the
// dynamic table after each block. Appendix C.4/C.6 exercise the Huffman
// code of Appendix B, so a wrong transcription of the table fails here.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HpackDecoder, HeaderField, readInt } from '../../../../mitm/http_log/hpack';
import { HUFFMAN_CODES, huffmanDecode } from '../../../../mitm/http_log/huffman';
import { STATIC_TABLE } from '../../../../mitm/http_log/hpack_static';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

function decodeOk(d: HpackDecoder, block: Buffer): HeaderField[] {
  const r = d.decode(block);
  if (!Array.isArray(r)) throw new Error(`decode failed: ${JSON.stringify(r)}`);
  return r;
}

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';

describe('HPACK integers (RFC 7541 §5.1, C.1)', () => {
  test('C.1.1: 10 fits a 5-bit prefix', () => {
    expect(readInt(hex('0a'), 0, 5)).toEqual({ value: 10, next: 1 });
  });
  test('C.1.2: 1337 with a 5-bit prefix uses two continuation bytes', () => {
    expect(readInt(hex('1f9a0a'), 0, 5)).toEqual({ value: 1337, next: 3 });
  });
  test('C.1.3: 42 at an octet boundary (8-bit prefix)', () => {
    expect(readInt(hex('2a'), 0, 8)).toEqual({ value: 42, next: 1 });
  });
  test('an integer whose continuation never ends is refused, not looped on', () => {
    expect(readInt(hex('1fffffffffffffff'), 0, 5)).toBeNull();
  });
});

describe('HPACK static table (Appendix A)', () => {
  test('has 61 entries with the RFC names at the edges', () => {
    expect(STATIC_TABLE.length - 1).toBe(61);
    expect(STATIC_TABLE[1]).toEqual([':authority', '']);
    expect(STATIC_TABLE[8]).toEqual([':status', '200']);
    expect(STATIC_TABLE[61]).toEqual(['www-authenticate', '']);
  });
});

describe('Huffman code (Appendix B)', () => {
  test('is a complete prefix code: the Kraft sum over 257 symbols is exactly 1', () => {
    const sum = HUFFMAN_CODES.reduce((s, c) => s + 2 ** -c.len, 0);
    expect(HUFFMAN_CODES.length).toBe(257);
    expect(sum).toBe(1);
  });
  test('rebuilds codes printed in Appendix B', () => {
    expect(HUFFMAN_CODES[0]).toEqual({ code: 0x1ff8, len: 13 });
    expect(HUFFMAN_CODES[0x20]).toEqual({ code: 0x14, len: 6 });
    expect(HUFFMAN_CODES[0x61]).toEqual({ code: 0x3, len: 5 });
    expect(HUFFMAN_CODES[0x7f]).toEqual({ code: 0xffffffc, len: 28 });
    expect(HUFFMAN_CODES[0xff]).toEqual({ code: 0x3ffffee, len: 26 });
    expect(HUFFMAN_CODES[256]).toEqual({ code: 0x3fffffff, len: 30 });
  });
  test('decodes every byte value encoded with its own code', () => {
    const bits: number[] = [];
    for (let s = 0; s < 256; s++) for (let i = HUFFMAN_CODES[s].len - 1; i >= 0; i--) bits.push(Math.floor(HUFFMAN_CODES[s].code / 2 ** i) % 2);
    while (bits.length % 8) bits.push(1);
    const enc = Buffer.alloc(bits.length / 8);
    bits.forEach((b, i) => { enc[i >> 3] |= b << (7 - (i & 7)); });
    const out = Buffer.alloc(enc.length * 2);
    const n = huffmanDecode(enc, 0, enc.length, out);
    expect(n).toBe(256);
    expect([...out.subarray(0, 256)]).toEqual([...Array(256).keys()]);
  });
  test('§5.2: padding of 8 or more bits is a decoding error', () => {
    // 'a' (00011) followed by 11 one bits: padding longer than 7 bits.
    expect(huffmanDecode(hex('1fff'), 0, 2, Buffer.alloc(8))).toBe('huffman_padding');
  });
  test('§5.2: padding that is not a prefix of EOS is a decoding error', () => {
    // 'a' then 000 as padding.
    expect(huffmanDecode(hex('18'), 0, 1, Buffer.alloc(8))).toBe('huffman_padding');
  });
  test('§5.2: an explicit EOS symbol is a decoding error', () => {
    expect(huffmanDecode(hex('ffffffff'), 0, 4, Buffer.alloc(8))).toBe('huffman_eos');
  });
});

describe('HPACK header field representations (C.2)', () => {
  test('C.2.1: literal with incremental indexing adds to the dynamic table', () => {
    const d = new HpackDecoder();
    const f = decodeOk(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    expect(f).toEqual([['custom-key', 'custom-header']]);
    expect(d.dynamicTable()).toEqual([['custom-key', 'custom-header']]);
    expect(d.tableSize).toBe(55);
  });
  test('C.2.2: literal without indexing leaves the table empty', () => {
    const d = new HpackDecoder();
    expect(decodeOk(d, hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([[':path', '/sample/path']]);
    expect(d.tableSize).toBe(0);
  });
  test('C.2.3: literal never indexed leaves the table empty', () => {
    const d = new HpackDecoder();
    expect(decodeOk(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).toEqual([['password', 'secret']]);
    expect(d.tableSize).toBe(0);
  });
  test('C.2.4: indexed field from the static table', () => {
    expect(decodeOk(new HpackDecoder(), hex('82'))).toEqual([[':method', 'GET']]);
  });
});

const REQ1: HeaderField[] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: HeaderField[] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: HeaderField[] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const T1: HeaderField[] = [[':authority', 'www.example.com']];
const T2: HeaderField[] = [['cache-control', 'no-cache'], ...T1];
const T3: HeaderField[] = [['custom-key', 'custom-value'], ...T2];

function requestSequence(name: string, blocks: string[]): void {
  test(`${name}: three requests on one connection decode with the table states of the RFC`, () => {
    const d = new HpackDecoder();
    expect(decodeOk(d, hex(blocks[0]))).toEqual(REQ1);
    expect(d.dynamicTable()).toEqual(T1);
    expect(d.tableSize).toBe(57);
    expect(decodeOk(d, hex(blocks[1]))).toEqual(REQ2);
    expect(d.dynamicTable()).toEqual(T2);
    expect(d.tableSize).toBe(110);
    expect(decodeOk(d, hex(blocks[2]))).toEqual(REQ3);
    expect(d.dynamicTable()).toEqual(T3);
    expect(d.tableSize).toBe(164);
  });
}

requestSequence('C.3 (no Huffman)', [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
]);
requestSequence('C.4 (Huffman)', [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
]);

const RESP1: HeaderField[] = [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']];
const RESP2: HeaderField[] = [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']];
const RESP3: HeaderField[] = [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];

function responseSequence(name: string, blocks: string[]): void {
  test(`${name}: responses with a 256-byte table evict oldest entries first (§4.4)`, () => {
    const d = new HpackDecoder({ tableSize: 256 });
    expect(decodeOk(d, hex(blocks[0]))).toEqual(RESP1);
    expect(d.dynamicTable()).toEqual([['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private'], [':status', '302']]);
    expect(d.tableSize).toBe(222);
    expect(decodeOk(d, hex(blocks[1]))).toEqual(RESP2);
    expect(d.dynamicTable()).toEqual([[':status', '307'], ['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private']]);
    expect(d.tableSize).toBe(222);
    expect(decodeOk(d, hex(blocks[2]))).toEqual(RESP3);
    expect(d.dynamicTable()).toEqual([['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]]);
    expect(d.tableSize).toBe(215);
  });
}

responseSequence('C.5 (no Huffman)', [
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
]);
responseSequence('C.6 (Huffman)', [
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
]);

describe('HPACK dynamic table size updates (§4.2, §6.3)', () => {
  test('an update to 0 empties the table, and later indices into it fail', () => {
    const d = new HpackDecoder();
    decodeOk(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    expect(decodeOk(d, hex('20'))).toEqual([]);
    expect(d.tableSize).toBe(0);
    expect(d.decode(hex('be'))).toMatchObject({ kind: 'hpack_error' });
  });
  test('an update after a header field in the same block is a COMPRESSION_ERROR', () => {
    expect(new HpackDecoder().decode(hex('82 20'))).toMatchObject({ kind: 'hpack_error' });
  });
  test('an update above SETTINGS_HEADER_TABLE_SIZE is a COMPRESSION_ERROR', () => {
    // 3f e2 1f = size update to 31 + 0x62 + (0x1f << 7) = 4097.
    expect(new HpackDecoder().decode(hex('3fe21f'))).toMatchObject({ kind: 'hpack_error' });
  });
  test('an update within a size the decoder advertised in SETTINGS is accepted', () => {
    const d = new HpackDecoder();
    d.setAllowedTableSize(8192);
    decodeOk(d, hex('3fe13f')); // 31 + 0x61 + (0x3f << 7) = 8192
    expect(d.tableMaxSize).toBe(8192);
  });
  test('index 0 is a decoding error (§6.1)', () => {
    expect(new HpackDecoder().decode(hex('80'))).toMatchObject({ kind: 'hpack_error' });
  });
  test('a string longer than the block is a decoding error, not an out-of-bounds read', () => {
    expect(new HpackDecoder().decode(hex('400a 6375'))).toMatchObject({ kind: 'hpack_error' });
  });
  test('indexed references cannot amplify a block past the header list bound', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 1000 });
    // One 162-byte entry inserted, then referenced 100 times by index 62.
    const big = Buffer.concat([hex('40 03 616161 7f00'), Buffer.alloc(127, 0x62), Buffer.alloc(100, 0xbe)]);
    expect(d.decode(big)).toMatchObject({ kind: 'hpack_error' });
  });
});

describe('HPACK eviction (§4.4)', () => {
  test('an evicted entry is let go at once: the strings held stay within the table size, whatever the entry sizes', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const d = new HpackDecoder({ tableSize: 65536, maxHeaderListSize: 1 << 20 });
    const settle = async (): Promise<number> => {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      return process.memoryUsage().heapUsed;
    };
    const before = await settle();
    // Literals with incremental indexing, new name (§6.2.1): a 32 KB entry and a small one in turn. Each
    // large one evicts the one before it, and the small one behind it keeps the table from emptying.
    const literal = (name: string, value: Buffer): Buffer => {
      // The length: 7-bit prefix full, then base-128 digits, low first, with the high bit on all but the last (§5.1).
      const length = [0x7f];
      let rest = value.length - 127;
      for (; rest >= 128; rest = Math.floor(rest / 128)) length.push(0x80 | (rest % 128));
      length.push(rest);
      return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from(length), value]);
    };
    for (let i = 0; i < 31; i++) {
      const value = Buffer.alloc(32_800, 0x61 + (i % 26));
      expect(decodeOk(d, literal('x-big', value))).toEqual([['x-big', value.toString('latin1')]]);
      expect(decodeOk(d, literal('x-small', Buffer.alloc(200, 0x73)))).toHaveLength(1);
    }
    expect(d.dynamicTable().map(([name]) => name)).toEqual(['x-small', 'x-big', 'x-small']);
    // The 30 evicted large values, kept, would be about 1 MB.
    expect((await settle()) - before).toBeLessThan(400_000);
  });
});
