// The send buffer copies written bytes into pooled chunks, gives each chunk
// back once all its bytes are acknowledged, and charges budgets whole chunks.
import { SEND_CHUNK_BYTES, SEND_POOL_KEPT_CHUNKS, SendBuffer, SendChunkPool } from '../../../../netstack/tcp/send_buffer';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PacketArena } from '../../../../netstack/wire/arena';
import { bytes } from './helpers';

const CHUNK = SEND_CHUNK_BYTES;

describe('send buffer', () => {
  test('accepts only up to its capacity and reports how much it took', () => {
    const b = new SendBuffer(100);
    expect(b.push(bytes(60))).toBe(60);
    expect(b.push(bytes(60))).toBe(40);
    expect(b.free).toBe(0);
  });

  test('slices across chunk boundaries and after partial consumption', () => {
    const b = new SendBuffer(1000);
    const all = bytes(300);
    b.push(all.subarray(0, 100));
    b.push(all.subarray(100, 250));
    b.push(all.subarray(250));
    expect(b.slice(50, 100)).toEqual(all.subarray(50, 150));
    b.consume(120);
    expect(b.slice(0, 50)).toEqual(all.subarray(120, 170));
    expect(b.slice(100, 500)).toEqual(all.subarray(220));
    expect(b.length).toBe(180);
  });

  test('keeps a copy: the writer may reuse its buffer once push() returns', () => {
    const b = new SendBuffer();
    const data = bytes(5000, 7);
    b.push(data);
    data.fill(0);
    expect(b.slice(0, 5000)).toEqual(bytes(5000, 7));
  });

  test('any range reads back what was written, whatever the sizes of the writes and of the acknowledgements', () => {
    const b = new SendBuffer(8 * CHUNK);
    const all = bytes(6 * CHUNK + 123, 3);
    let written = 0;
    let acked = 0;
    let step = 1;
    let origin = 0; // where the first chunk starts: an empty buffer starts afresh
    while (acked < all.length) {
      step = (step * 7919 + 17) % 9973;
      if (written < all.length) written += b.push(all.subarray(written, Math.min(all.length, written + 1 + (step % (CHUNK + 500)))));
      for (const [off, len] of [[0, 1400], [step % Math.max(1, b.length), 1400], [Math.max(0, b.length - 700), 1400]]) {
        expect(b.slice(off, len)).toEqual(all.subarray(acked + off, Math.min(written, acked + off + len)));
      }
      const n = Math.min(b.length, 1 + ((step * 31) % (2 * CHUNK)));
      b.consume(n);
      acked += n;
      expect(b.length).toBe(written - acked);
      if (b.length === 0) origin = acked;
      expect(b.memory).toBe(Math.ceil((((acked - origin) % CHUNK) + b.length) / CHUNK) * CHUNK);
    }
  });

  test('a buffer kept full while a long stream passes through reads back right (emptied chunk slots are dropped in groups)', () => {
    const b = new SendBuffer(8 * CHUNK);
    // Not periodic within a chunk: a byte read from the wrong chunk shows.
    const all = randomBytes(100 * CHUNK);
    let written = 0;
    let acked = 0;
    let step = 1;
    while (acked < all.length) {
      while (written < all.length && b.free > 0) written += b.push(all.subarray(written, Math.min(all.length, written + 3000)));
      step = (step * 7919 + 17) % 9973;
      const off = step % b.length;
      expect(b.slice(off, 1400).equals(all.subarray(acked + off, Math.min(written, acked + off + 1400)))).toBe(true);
      const n = Math.min(b.length, 1 + (step % 6000));
      b.consume(n);
      acked += n;
      expect(b.memory).toBe(b.length === 0 ? 0 : Math.ceil(((acked % CHUNK) + b.length) / CHUNK) * CHUNK);
    }
  });

  test('a chunk goes back to the pool once all its bytes are acknowledged, and the next write reuses it', () => {
    const pool = new SendChunkPool();
    const b = new SendBuffer(1 << 20, pool);
    b.push(bytes(CHUNK + 10));
    expect(b.memory).toBe(2 * CHUNK);
    const first = b.slice(0, 1).buffer;
    b.consume(CHUNK - 1);
    expect(pool.kept).toBe(0); // one byte of the first chunk is still unacknowledged
    b.consume(1);
    expect(pool.kept).toBe(1);
    expect(b.memory).toBe(CHUNK);
    const other = new SendBuffer(1 << 20, pool);
    other.push(bytes(10, 99));
    expect(other.slice(0, 10).buffer).toBe(first);
    expect(other.slice(0, 10)).toEqual(bytes(10, 99));
  });

  test('an empty buffer holds no chunk: the last one goes back when everything is acknowledged', () => {
    const pool = new SendChunkPool();
    const b = new SendBuffer(1 << 20, pool);
    expect(b.memory).toBe(0);
    b.push(bytes(10));
    b.consume(10);
    expect(b.memory).toBe(0);
    expect(pool.kept).toBe(1);
    b.push(bytes(10, 50));
    expect(pool.kept).toBe(0);
    expect(b.slice(0, 10)).toEqual(bytes(10, 50));
  });

  test('fitsIn(): the free end of the last chunk costs nothing, then only whole chunks the room pays for', () => {
    const b = new SendBuffer();
    expect(b.fitsIn(CHUNK - 1)).toBe(0);
    expect(b.fitsIn(0)).toBe(0);
    expect(b.fitsIn(2.5 * CHUNK)).toBe(2 * CHUNK);
    expect(b.fitsIn(Infinity)).toBe(Infinity);
    b.push(bytes(100));
    expect(b.fitsIn(0)).toBe(CHUNK - 100);
    expect(b.fitsIn(-5)).toBe(CHUNK - 100);
    expect(b.fitsIn(CHUNK)).toBe(2 * CHUNK - 100);
  });

  test("a range spanning two chunks is copied into the pool's seam arena, not into fresh memory", () => {
    const seams = new PacketArena();
    const b = new SendBuffer(1 << 20, new SendChunkPool(seams));
    const all = bytes(2 * CHUNK, 5);
    b.push(all);
    const seam = b.slice(CHUNK - 100, 1368);
    expect(seam).toEqual(all.subarray(CHUNK - 100, CHUNK + 1268));
    expect(seams.take(8).buffer).toBe(seam.buffer);
    seams.recycle();
    expect(b.slice(CHUNK - 50, 100).buffer).toBe(seam.buffer);
  });

  test('the pool keeps a bounded number of free chunks', () => {
    const pool = new SendChunkPool();
    const b = new SendBuffer(1 << 30, pool);
    b.push(Buffer.alloc((SEND_POOL_KEPT_CHUNKS + 10) * CHUNK));
    b.consume(b.length);
    expect(pool.kept).toBe(SEND_POOL_KEPT_CHUNKS);
  });

  test('a chunk the pool let go of is not held by the buffer: a client that leaves a few bytes unacknowledged pins nothing beyond what it is charged', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pool = new SendChunkPool();
    // The pool stays full, so it drops every chunk given back; the buffer's chunks are fresh ones, watched.
    for (let i = 0; i < SEND_POOL_KEPT_CHUNKS; i++) pool.give(Buffer.allocUnsafeSlow(CHUNK));
    const taken: WeakRef<Buffer>[] = [];
    pool.take = (): Buffer => {
      const chunk = Buffer.allocUnsafeSlow(CHUNK);
      taken.push(new WeakRef(chunk));
      return chunk;
    };
    const b = new SendBuffer(1 << 30, pool);
    // 1 MiB sent, all of it acknowledged but the last 100 bytes, in ACKs of a few segments each.
    b.push(bytes(64 * CHUNK, 9));
    for (let left = b.length; left > 100; left = b.length) b.consume(Math.min(4 * 1380, left - 100));
    expect(b.memory).toBe(CHUNK);
    expect(taken).toHaveLength(64);
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(taken.filter((ref) => ref.deref() !== undefined)).toHaveLength(1);
    expect(b.slice(0, 100)).toEqual(bytes(64 * CHUNK, 9).subarray(-100));
  });
});
