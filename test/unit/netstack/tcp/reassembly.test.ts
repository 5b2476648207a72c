import { Reassembly } from '../../../../netstack/tcp/reassembly';
import { asSeq } from '../../../../netstack/tcp/seq';
import { bytes } from './helpers';

const base = asSeq(1000);
const at = (n: number) => asSeq(1000 + n);

describe('out-of-order reassembly (RFC 9293 §3.10.7.4, RFC 2018)', () => {
  test('delivers nothing while the hole at RCV.NXT is open', () => {
    const r = new Reassembly(10_000);
    r.insert(at(100), bytes(100, 100), base);
    expect(r.takeContiguous(base)).toEqual([]);
    expect(r.bytes).toBe(100);
  });

  test('delivers held data once RCV.NXT reaches it', () => {
    const r = new Reassembly(10_000);
    const all = bytes(300);
    r.insert(at(200), all.subarray(200), base);
    r.insert(at(100), all.subarray(100, 200), base);
    expect(Buffer.concat(r.takeContiguous(at(100)))).toEqual(all.subarray(100));
    expect(r.isEmpty).toBe(true);
    expect(r.bytes).toBe(0);
  });

  test('copies the payload so a reused packet buffer cannot corrupt held data', () => {
    const r = new Reassembly(10_000);
    const pkt = bytes(50);
    r.insert(at(10), pkt, base);
    pkt.fill(0xee);
    expect(Buffer.concat(r.takeContiguous(at(10)))).toEqual(bytes(50));
  });

  test('merges overlapping and duplicate segments without duplicating bytes', () => {
    const r = new Reassembly(10_000);
    const all = bytes(400);
    r.insert(at(100), all.subarray(100, 200), base);
    r.insert(at(150), all.subarray(150, 300), base); // partial overlap
    r.insert(at(100), all.subarray(100, 200), base); // exact duplicate
    r.insert(at(50), all.subarray(50, 400), base); // covers everything
    expect(r.bytes).toBe(350);
    expect(Buffer.concat(r.takeContiguous(at(50)))).toEqual(all.subarray(50, 400));
  });

  test('reports the block holding the most recent segment first (RFC 2018 §4)', () => {
    const r = new Reassembly(10_000);
    r.insert(at(100), bytes(100), base);
    r.insert(at(300), bytes(100), base);
    r.insert(at(500), bytes(100), base);
    r.insert(at(200), bytes(50), base); // extends the first block
    expect(r.sackBlocks(4)).toEqual([
      [at(100), at(250)],
      [at(500), at(600)],
      [at(300), at(400)],
    ]);
    expect(r.sackBlocks(2)).toHaveLength(2);
  });

  test('never holds more than its byte capacity (memory bound per flow)', () => {
    const r = new Reassembly(150);
    r.insert(at(100), bytes(100), base);
    r.insert(at(300), bytes(100), base);
    expect(r.bytes).toBe(150);
    expect(r.sackBlocks(4)).toContainEqual([at(300), at(350)]);
  });

  test('ignores data at or before RCV.NXT', () => {
    const r = new Reassembly(1000);
    expect(r.insert(at(-100), bytes(100), base)).toBe(0);
    expect(r.isEmpty).toBe(true);
  });

  test('works across the 2^32 wrap', () => {
    const nxt = asSeq(0xffff_ff00);
    const r = new Reassembly(10_000);
    const all = bytes(0x200);
    r.insert(asSeq(0), all.subarray(0x100), nxt);
    r.insert(asSeq(0xffff_ff80), all.subarray(0x80, 0x100), nxt);
    expect(r.sackBlocks(4)).toEqual([[0xffff_ff80, 0x100]]);
    r.insert(nxt, all.subarray(0, 0x80), nxt);
    expect(Buffer.concat(r.takeContiguous(nxt))).toEqual(all);
  });
});
