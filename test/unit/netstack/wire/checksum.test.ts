import {
  checksum,
  onesComplementSum,
  patchChecksum,
  pseudoHeaderSum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  updateChecksumBytes,
  updateChecksumWord,
} from '../../../../netstack/wire';
import { nativeChecksum, onesComplementSumJs } from '../../../../netstack/wire/checksum';
import {
  hex,
  LOOPBACK4,
  LOOPBACK6,
  naiveChecksum,
  randomBytes,
  rng,
  V4_DNS_QUERY,
  V4_TCP_SYN,
  V6_DNS_QUERY,
  V6_TCP_SYN,
  WIKIPEDIA_IPV4_HEADER,
} from './fixtures';

describe('Internet checksum (RFC 1071)', () => {
  test('RFC 1071 §3 example: 0001 f203 f4f5 f6f7 sums to ddf2', () => {
    const b = hex('0001f203f4f5f6f7');
    expect(onesComplementSum(b, 0, b.length)).toBe(0xddf2);
    expect(checksum(b, 0, b.length)).toBe(0x220d);
  });

  test('Wikipedia IPv4 header example: checksum b861 with the field zeroed', () => {
    const h = Buffer.from(WIKIPEDIA_IPV4_HEADER);
    h.writeUInt16BE(0, 10);
    expect(checksum(h, 0, 20)).toBe(0xb861);
  });

  test('data that includes a correct checksum field sums to zero', () => {
    expect(checksum(WIKIPEDIA_IPV4_HEADER, 0, 20)).toBe(0);
  });

  test('an odd trailing byte is padded with a zero low byte (RFC 1071 §4.1)', () => {
    expect(checksum(hex('ab'), 0, 1)).toBe(~0xab00 & 0xffff);
  });

  test('an empty range gives 0xffff (complement of zero)', () => {
    expect(checksum(hex('0102'), 1, 1)).toBe(0xffff);
  });

  test('matches a naive byte-wise reference on random buffers of odd and even lengths and offsets', () => {
    const next = rng(0xc0ffee);
    for (let n = 0; n < 400; n++) {
      const len = next() % 1600;
      const pad = next() % 7; // unaligned starts inside a larger ArrayBuffer
      const big = randomBytes(next, len + pad + 3);
      const start = pad;
      const end = pad + len;
      expect(checksum(big, start, end)).toBe(naiveChecksum(big.subarray(start, end)));
    }
  });

  test('chaining partial sums through `initial` equals one pass over the concatenation', () => {
    const next = rng(7);
    for (let n = 0; n < 100; n++) {
      const a = randomBytes(next, (next() % 100) * 2); // even split keeps word alignment
      const b = randomBytes(next, next() % 101);
      expect(checksum(b, 0, b.length, onesComplementSum(a, 0, a.length))).toBe(
        naiveChecksum(Buffer.concat([a, b])),
      );
    }
  });

  test('all-0xff data of 64 KiB does not overflow the accumulator', () => {
    const b = Buffer.alloc(65536, 0xff);
    expect(checksum(b, 0, b.length)).toBe(naiveChecksum(b));
  });
});

describe('the addon sum (wire_native) against the JS loop', () => {
  test('the addon is built and used (npm install runs node-gyp for binding.gyp)', () => {
    expect(nativeChecksum).toBe(true);
  });

  test('equal for every length 0..400 at even and odd starts, with and without an initial sum, and for 65,535 bytes', () => {
    const r = rng(12);
    const buf = randomBytes(r, 66_000);
    for (let len = 0; len <= 400; len++) {
      for (const start of [0, 1, 2, 3]) {
        const initial = len % 3 === 0 ? 0 : (len * 2654435761) % 0x30000;
        expect([len, start, onesComplementSum(buf, start, start + len, initial)]).toEqual([len, start, onesComplementSumJs(buf, start, start + len, initial)]);
      }
    }
    expect(onesComplementSum(buf, 7, 7 + 65_535)).toBe(onesComplementSumJs(buf, 7, 7 + 65_535));
    // All ones: the sum that must fold to 0xffff, never to 0.
    const ones = Buffer.alloc(1500, 0xff);
    expect(onesComplementSum(ones, 0, ones.length)).toBe(0xffff);
    expect(onesComplementSumJs(ones, 0, ones.length)).toBe(0xffff);
  });

  test('a segment built and verified through the addon checks out with the naive reference', () => {
    const r = rng(99);
    for (let i = 0; i < 50; i++) {
      const b = randomBytes(r, 129 + (r() % 1400));
      expect(checksum(b, 0, b.length)).toBe(naiveChecksum(b));
    }
  });
});

describe('pseudo-header sums', () => {
  // Loopback checksum offload leaves exactly the folded pseudo-header sum in
  // the field: the Linux kernel is the independent oracle here.
  test('IPv4 UDP pseudo-header sum equals the kernel partial checksum of a captured datagram', () => {
    const udpLen = V4_DNS_QUERY.length - 20;
    expect(pseudoHeaderSumV4(LOOPBACK4, LOOPBACK4, 17, udpLen)).toBe(V4_DNS_QUERY.readUInt16BE(26));
  });

  test('IPv4 TCP pseudo-header sum equals the kernel partial checksum of a captured SYN', () => {
    expect(pseudoHeaderSumV4(LOOPBACK4, LOOPBACK4, 6, V4_TCP_SYN.length - 20)).toBe(V4_TCP_SYN.readUInt16BE(36));
  });

  test('IPv6 pseudo-header (RFC 8200 §8.1) sum equals the kernel partial checksum for UDP and TCP', () => {
    expect(pseudoHeaderSumV6(LOOPBACK6, LOOPBACK6, 17, V6_DNS_QUERY.length - 40)).toBe(V6_DNS_QUERY.readUInt16BE(46));
    expect(pseudoHeaderSumV6(LOOPBACK6, LOOPBACK6, 6, V6_TCP_SYN.length - 40)).toBe(V6_TCP_SYN.readUInt16BE(56));
  });

  test('IPv6 upper-layer length is 32 bits: lengths over 65535 carry into the high word', () => {
    const z = Buffer.alloc(16);
    const ref = Buffer.alloc(40);
    ref.writeUInt32BE(70000, 32);
    ref[39] = 6;
    expect(pseudoHeaderSumV6(z, z, 6, 70000)).toBe(~naiveChecksum(ref) & 0xffff);
  });

  test('pseudoHeaderSum picks the family by address length', () => {
    expect(pseudoHeaderSum(LOOPBACK4, LOOPBACK4, 17, 60)).toBe(pseudoHeaderSumV4(LOOPBACK4, LOOPBACK4, 17, 60));
    expect(pseudoHeaderSum(LOOPBACK6, LOOPBACK6, 17, 60)).toBe(pseudoHeaderSumV6(LOOPBACK6, LOOPBACK6, 17, 60));
  });
});

describe('incremental update (RFC 1624)', () => {
  test('RFC 1624 §4 example: HC=dd2f, m 5555 -> 3285 gives 0000 (eqn. 3), not ffff', () => {
    expect(updateChecksumWord(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
  });

  test('rewriting an IPv4 address updates the header checksum as a full recompute would', () => {
    const h = Buffer.from(WIKIPEDIA_IPV4_HEADER);
    const oldSrc = Buffer.from(h.subarray(12, 16));
    const newSrc = hex('0a000001');
    newSrc.copy(h, 12);
    patchChecksum(h, 10, oldSrc, newSrc);
    expect(checksum(h, 0, 20)).toBe(0);
  });

  test('random 16-byte address rewrites agree with recomputation', () => {
    const next = rng(99);
    for (let n = 0; n < 200; n++) {
      const data = randomBytes(next, 60);
      data.writeUInt16BE(0, 0);
      data.writeUInt16BE(checksum(data, 0, 60), 0);
      const oldAddr = Buffer.from(data.subarray(8, 24));
      const newAddr = randomBytes(next, 16);
      newAddr.copy(data, 8);
      const patched = updateChecksumBytes(data.readUInt16BE(0), oldAddr, newAddr);
      data.writeUInt16BE(patched, 0);
      expect(checksum(data, 0, 60)).toBe(0);
    }
  });
});
