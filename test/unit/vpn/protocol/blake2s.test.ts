import { createHash } from 'node:crypto';
import { blake2s, Blake2s } from '../../../../vpn/protocol/blake2s';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 7693 Appendix E: deterministic Fibonacci byte sequence. */
function selftestSeq(len: number, seed: number): Buffer {
  const out = Buffer.alloc(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

describe('BLAKE2s (RFC 7693)', () => {
  test('Appendix B: BLAKE2s-256("abc")', () => {
    expect(hex(blake2s(Buffer.from('abc')))).toBe('508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  });

  test('Appendix E self-test: grand hash over keyed and unkeyed digests of 16..32 bytes', () => {
    const grand = new Blake2s(32);
    for (const outLen of [16, 20, 28, 32]) {
      for (const inLen of [0, 3, 64, 65, 255, 1024]) {
        const input = selftestSeq(inLen, inLen);
        grand.update(blake2s(input, outLen));
        grand.update(blake2s(input, outLen, selftestSeq(outLen, outLen)));
      }
    }
    expect(hex(grand.digest())).toBe('6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe');
  });

  test('reference KAT: keyed (key 00..1f) hash of the empty message', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(hex(blake2s(Buffer.alloc(0), 32, key))).toBe('48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49');
  });

  test('16-byte keyed output (the MAC shape WireGuard uses) matches Python hashlib', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(hex(blake2s(Buffer.from('abc'), 16, key))).toBe('61ba5f165c194692e09d12520cc4c74a');
  });

  test('agrees with OpenSSL BLAKE2s-256 around every block boundary', () => {
    for (const len of [0, 1, 55, 63, 64, 65, 127, 128, 129, 191, 192, 193, 1000, 4096]) {
      const data = Buffer.alloc(len);
      for (let i = 0; i < len; i++) data[i] = (i * 7 + 3) & 0xff;
      expect(hex(blake2s(data))).toBe(createHash('blake2s256').update(data).digest('hex'));
    }
  });

  test('incremental updates in odd chunks equal the one-shot hash', () => {
    const data = Buffer.alloc(300, 0x5a);
    const h = new Blake2s(32, Buffer.alloc(32, 1));
    for (let off = 0; off < data.length; off += 37) h.update(data.subarray(off, off + 37));
    expect(hex(h.digest())).toBe(hex(blake2s(data, 32, Buffer.alloc(32, 1))));
  });

  test('rejects output lengths and keys outside the BLAKE2s parameter ranges', () => {
    expect(() => new Blake2s(33)).toThrow(RangeError);
    expect(() => new Blake2s(0)).toThrow(RangeError);
    expect(() => new Blake2s(32, Buffer.alloc(33))).toThrow(RangeError);
  });
});
