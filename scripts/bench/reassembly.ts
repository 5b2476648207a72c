// The TCP receive path with out-of-order data, one flow, no I/O: how fast
// segments beyond a hole are stored and handed back once it fills, and what
// a hostile client can make one flow hold. Anchor: the same bytes arriving in
// order (the path every segment takes when nothing is lost).
import { Receiver } from '../../netstack/tcp/receiver';
import { asSeq, seqAdd, type Seq } from '../../netstack/tcp/seq';
import type { BenchRow } from './table';

const MSS = 1448;
const CAPACITY = 1 << 20;
const SEGMENTS_PER_WINDOW = Math.floor(CAPACITY / MSS) - 1;
const WINDOWS = 300;
const ISN = asSeq(0xfff0_0000); // crosses the 2^32 wrap during the run

function receiver(): Receiver {
  return new Receiver(seqAdd(ISN, -1), CAPACITY, 7, MSS, CAPACITY);
}

function drain(r: Receiver): number {
  let n = 0;
  for (let b = r.read(); b !== null; b = r.read()) n += b.length;
  return n;
}

/** MB/s of payload through onData+read, for segments sent in `order` (indices within each window). */
function throughput(order: number[]): number {
  const r = receiver();
  const payload = Buffer.alloc(MSS, 0x61);
  let base: Seq = r.rcvNxt;
  let delivered = 0;
  const t0 = process.hrtime.bigint();
  for (let w = 0; w < WINDOWS; w++) {
    for (const i of order) r.onData(seqAdd(base, i * MSS), payload, false);
    delivered += drain(r);
    base = r.rcvNxt;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (delivered !== WINDOWS * order.length * MSS) throw new Error(`lost data: ${delivered}`);
  return delivered / 1e6 / s;
}

const inOrder = Array.from({ length: SEGMENTS_PER_WINDOW }, (_, i) => i);
/** The first segment of each window lost and retransmitted last: everything else waits beyond the hole. */
const oneHole = [...inOrder.slice(1), 0];
/** 3% of segments arrive after their successor (mild reordering, many small holes). */
const reordered = ((): number[] => {
  const o = [...inOrder];
  let x = 12345;
  for (let i = 0; i + 1 < o.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    if (x % 100 < 3) [o[i], o[i + 1]] = [o[i + 1], o[i]];
  }
  return o;
})();

/** One byte at every other sequence number across the whole window, behind a hole. */
function everyOtherByte(): { ms: number; memory: number; stored: number; pieces: number } {
  const r = receiver();
  const one = Buffer.alloc(1, 0x62);
  const t0 = process.hrtime.bigint();
  for (let off = 1; off < CAPACITY; off += 2) r.onData(seqAdd(r.rcvNxt, off), one, false);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, memory: r.ooo.memory, stored: r.ooo.bytes, pieces: r.ooo.pieceCount };
}

export async function benchReassembly(): Promise<BenchRow[]> {
  throughput(oneHole); // warm up
  const rows: BenchRow[] = [
    { name: 'in order (anchor)', value: throughput(inOrder), unit: 'MB/s' },
    { name: 'one hole per 1 MiB window', value: throughput(oneHole), unit: 'MB/s', anchor: 'in order (anchor)' },
    { name: '3% reordered', value: throughput(reordered), unit: 'MB/s', anchor: 'in order (anchor)' },
  ];
  const attack = everyOtherByte();
  rows.push(
    { name: 'every-other-byte attack: time for 0.5 M segments', value: attack.ms, unit: 'ms' },
    { name: 'every-other-byte attack: bytes stored', value: attack.stored, unit: 'B' },
    { name: 'every-other-byte attack: ranges held', value: attack.pieces, unit: '' },
    { name: 'every-other-byte attack: memory held (pages + ranges)', value: attack.memory, unit: 'B' },
  );
  return rows;
}
