import { Reassembly } from '../../../../netstack/tcp/reassembly';
import { asSeq, seqAdd } from '../../../../netstack/tcp/seq';
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
  test('adjacent segments merge into one range on insert', () => {
    const r = new Reassembly(10_000);
    r.insert(at(100), bytes(100), base);
    r.insert(at(300), bytes(100), base);
    expect(r.pieceCount).toBe(2);
    r.insert(at(200), bytes(100), base);
    expect(r.pieceCount).toBe(1);
    expect(r.sackBlocks(4)).toEqual([[at(100), at(400)]]);
  });

  test('a segment overlapping several ranges merges them all, storing only the missing bytes', () => {
    const r = new Reassembly(10_000);
    const all = bytes(1000);
    for (const off of [100, 300, 500, 700]) r.insert(at(off), all.subarray(off, off + 50), base);
    expect(r.insert(at(120), all.subarray(120, 720), base)).toBe(600 - 30 - 50 - 50 - 20);
    expect(r.pieceCount).toBe(1);
    expect(r.sackBlocks(4)).toEqual([[at(100), at(750)]]);
    r.insert(base, all.subarray(0, 100), base);
    expect(Buffer.concat(r.takeContiguous(at(100)))).toEqual(all.subarray(100, 750));
  });

  test('one-byte segments at every other byte of a 1 MiB window hold at most maxPieces ranges and a few KB (was 524,287 pieces, 84 MB)', () => {
    const window = 1 << 20;
    const r = new Reassembly(window);
    const one = Buffer.alloc(1, 0x55);
    const before = process.memoryUsage();
    for (let off = 1; off < window; off += 2) r.insert(seqAdd(base, off), one, base);
    const after = process.memoryUsage();
    expect(r.pieceCount).toBe(r.maxPieces);
    expect(r.bytes).toBe(r.maxPieces);
    expect(r.memory).toBeLessThan(64 * 1024);
    expect(r.refused.pieces).toBe(window / 2 - r.maxPieces);
    // The process agrees (generous bound: the old queue grew by about 84 MB here).
    expect(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers).toBeLessThan(16 << 20);
  });

  test('a new range beyond maxPieces is refused and counted, while data extending a held range is still stored', () => {
    const r = new Reassembly(10_000, 2);
    r.insert(at(100), bytes(10), base);
    r.insert(at(300), bytes(10), base);
    expect(r.insert(at(500), bytes(10), base)).toBe(0);
    expect(r.refused.pieces).toBe(10);
    expect(r.insert(at(110), bytes(10), base)).toBe(10);
    expect(r.sackBlocks(4)).toEqual([[at(100), at(120)], [at(300), at(310)]]);
  });

  test('memory is bounded by the byte capacity however the data is cut: a full window behind a hole costs about the window', () => {
    const window = 1 << 20;
    const r = new Reassembly(window);
    const seg = bytes(1448);
    for (let off = 1448; off + 1448 <= window + 4 * 1448; off += 1448) r.insert(seqAdd(base, off), seg, base);
    expect(r.bytes).toBe(window);
    expect(r.refused.bytes).toBeGreaterThan(0);
    expect(r.memory).toBeLessThanOrEqual(window + 2 * 8192 + 64);
  });

  test('nothing is stored while the owner is over its buffer budget; the refusal is counted', () => {
    let over = true;
    const r = new Reassembly(10_000, 256, () => !over);
    expect(r.insert(at(100), bytes(100), base)).toBe(0);
    expect(r.isEmpty).toBe(true);
    expect(r.refused.budget).toBe(100);
    over = false;
    expect(r.insert(at(100), bytes(100), base)).toBe(100);
  });

  test('pages are released once RCV.NXT passes them', () => {
    const r = new Reassembly(1 << 20);
    const all = bytes(100_000);
    r.insert(at(1000), all.subarray(1000), base);
    expect(r.memory).toBeGreaterThanOrEqual(99_000);
    r.insert(base, all.subarray(0, 1000), base);
    expect(Buffer.concat(r.takeContiguous(at(1000)))).toEqual(all.subarray(1000));
    expect(r.isEmpty).toBe(true);
    expect(r.memory).toBe(0);
  });

  test('with many ranges, SACK reports the most recently changed ones first (RFC 2018 §4)', () => {
    const r = new Reassembly(100_000);
    const order = [7, 2, 9, 4, 0, 5, 8, 1, 6, 3];
    for (const k of order) r.insert(at(100 + k * 200), bytes(50), base);
    const expected = [3, 6, 1, 8].map((k) => [at(100 + k * 200), at(150 + k * 200)]);
    expect(r.sackBlocks(4)).toEqual(expected);
    expect(r.sackBlocks(3)).toEqual(expected.slice(0, 3));
  });
});
