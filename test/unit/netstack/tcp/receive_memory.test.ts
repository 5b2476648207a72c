// What the receive side holds must be what it is charged: `buffered` (in-order
// bytes) plus the reassembly's pages. A client that fills one-byte holes, or
// a reader that drains entry by entry, must not leave memory held beyond that.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Receiver } from '../../../../netstack/tcp/receiver';
import { asSeq, seqAdd } from '../../../../netstack/tcp/seq';
import { bytes } from './helpers';

const IRS = asSeq(1000);

async function collectedArrayBuffers(): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

describe('receive-side memory', () => {
  test('bytes taken from the reassembly are copied: a hole filled a byte at a time holds no page per byte', async () => {
    const r = new Receiver(IRS, 1 << 20, 7, 1380, 65535 << 7);
    const before = await collectedArrayBuffers();
    const data = bytes(4000, 3);
    let seq = seqAdd(IRS, 1);
    for (let i = 0; i < data.length; i += 2) {
      r.onData(seqAdd(seq, 1), data.subarray(i + 1, i + 2), false); // beyond a one-byte hole
      r.onData(seq, data.subarray(i, i + 1), false); // fills it
      seq = seqAdd(seq, 2);
    }
    expect(r.buffered).toBe(data.length);
    expect(r.ooo.memory).toBe(0);
    // A reassembly page (8 KiB) per two bytes would be 16 MB here.
    expect((await collectedArrayBuffers()) - before).toBeLessThan(1 << 20);
    expect(r.read()).toEqual(data);
  });

  test('entries already read let go of their slabs at once', async () => {
    const r = new Receiver(IRS, 4 << 20, 7, 1380, 65535 << 7);
    const before = await collectedArrayBuffers();
    // About 1 MiB in order, read back a segment at a time while one byte always stays queued.
    const seg = bytes(16 * 1024, 1);
    let seq = seqAdd(IRS, 1);
    r.onData(seq, Buffer.from([7]), false);
    seq = seqAdd(seq, 1);
    let left = 7;
    for (let i = 0; i < 60; i++) {
      r.onData(seq, seg, false);
      seq = seqAdd(seq, seg.length);
      // equals(): jest's deep equality takes seconds over 1 MiB.
      expect(r.read(seg.length)?.equals(Buffer.concat([Buffer.from([left]), seg.subarray(0, -1)]))).toBe(true);
      left = seg[seg.length - 1];
    }
    expect(r.buffered).toBe(1);
    // Every slab but the one holding the last byte (and the one being filled) can go.
    expect((await collectedArrayBuffers()) - before).toBeLessThan(256 * 1024);
  });
});
