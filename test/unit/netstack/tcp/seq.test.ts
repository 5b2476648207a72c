import { asSeq, seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqSub } from '../../../../netstack/tcp/seq';

describe('sequence number arithmetic (RFC 9293 §3.4)', () => {
  test('addition wraps modulo 2^32', () => {
    expect(seqAdd(asSeq(0xffff_fff0), 0x20)).toBe(0x10);
    expect(seqAdd(asSeq(5), -10)).toBe(0xffff_fffb);
  });

  test('comparison treats a number just past the wrap as later', () => {
    const before = asSeq(0xffff_ff00);
    const after = asSeq(0x100);
    expect(seqLt(before, after)).toBe(true);
    expect(seqGt(after, before)).toBe(true);
    expect(seqLeq(before, before)).toBe(true);
    expect(seqGeq(after, before)).toBe(true);
    expect(seqLt(after, before)).toBe(false);
  });

  test('subtraction gives the signed distance across the wrap', () => {
    expect(seqSub(asSeq(0x10), asSeq(0xffff_fff0))).toBe(0x20);
    expect(seqSub(asSeq(0xffff_fff0), asSeq(0x10))).toBe(-0x20);
  });

  test('asSeq normalises negative and oversized numbers to uint32', () => {
    expect(asSeq(-1)).toBe(0xffff_ffff);
    expect(asSeq(2 ** 32 + 3)).toBe(3);
  });
});
