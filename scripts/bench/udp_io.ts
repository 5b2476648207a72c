// UDP I/O on loopback: Node's dgram (one event and one send syscall per
// datagram) against our batched socket (vpn/udp_native), without and with
// UDP GSO/GRO. Sender and receiver share one process and event loop, as the
// concentrator's edge does, so the rate counts both halves of the work.
// A bounded window of datagrams in flight keeps the kernel buffers from
// overflowing, so every datagram is counted and none is lost.
import { createSocket, type Socket } from 'node:dgram';
import { BatchUdpSocket, loadUdpNative } from '../../vpn/edge';
import type { BenchRow } from './table';

const SIZE = 1452; // a full WireGuard transport message for a 1420-byte tunnel MTU
const TOTAL = 200_000;
const WINDOW = 2048;
const STALL_MS = 1000;
const LOCALHOST = '127.0.0.1';

interface Pair {
  send(data: Buffer): void;
  flush(): void;
  received(): number;
  close(): Promise<void>;
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Datagrams per second delivered from one socket to the other. */
async function measure(pair: Pair): Promise<number> {
  const payload = Buffer.alloc(SIZE, 0x5a);
  const start = process.hrtime.bigint();
  let sent = 0;
  let lastProgress = Date.now();
  let lastReceived = 0;
  while (pair.received() < TOTAL) {
    while (sent < TOTAL && sent - pair.received() < WINDOW) {
      pair.send(payload);
      sent++;
    }
    pair.flush();
    await yieldToLoop();
    const r = pair.received();
    if (r !== lastReceived) {
      lastReceived = r;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > STALL_MS) {
      break; // lost datagrams: report what arrived
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await pair.close();
  return pair.received() / seconds;
}

function bindDgram(onMessage?: () => void): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    if (onMessage) s.on('message', onMessage);
    s.bind(0, LOCALHOST, () => resolve(s));
  });
}

async function dgramPair(): Promise<Pair> {
  let received = 0;
  const rx = await bindDgram(() => received++);
  const tx = await bindDgram();
  const port = rx.address().port;
  return {
    send: (d) => tx.send(d, port, LOCALHOST),
    flush: () => undefined,
    received: () => received,
    close: async () => {
      await new Promise<void>((r) => rx.close(() => r()));
      await new Promise<void>((r) => tx.close(() => r()));
    },
  };
}

async function batchedPair(offload: boolean): Promise<Pair & { offloaded: boolean }> {
  let received = 0;
  const rx = await BatchUdpSocket.open({ port: 0, address: LOCALHOST, gro: offload, gso: offload, onBatch: (b) => (received += b.count) });
  const tx = await BatchUdpSocket.open({ port: 0, address: LOCALHOST, gro: offload, gso: offload, onBatch: () => undefined });
  return {
    offloaded: tx.gso && rx.gro,
    send: (d) => tx.send(d, LOCALHOST, rx.port),
    flush: () => tx.flush(),
    received: () => received,
    close: async () => {
      await rx.close();
      await tx.close();
    },
  };
}

function unit(rate: number, what: string): string {
  return `datagrams/s (${SIZE} B, loopback, ${what}; = ${Math.round((rate * SIZE * 8) / 1e6)} Mbit/s)`;
}

export async function benchUdpIo(): Promise<BenchRow[]> {
  const anchor = 'node:dgram send + message event';
  const rows: BenchRow[] = [{ name: anchor, value: await measure(await dgramPair()), unit: unit(0, 'one syscall per datagram') }];
  rows[0].unit = unit(rows[0].value, 'one syscall per datagram');
  const native = loadUdpNative();
  if (typeof native === 'string') {
    process.stdout.write(`udp_io: batched rows skipped: ${native}\n`);
    return rows;
  }
  const plain = await measure(await batchedPair(false));
  rows.push({ name: 'udp_native sendmmsg + recvmmsg', value: plain, unit: unit(plain, 'batches of 64'), anchor });
  const pair = await batchedPair(true);
  if (pair.offloaded) {
    const gso = await measure(pair);
    rows.push({ name: 'udp_native + UDP GSO/GRO', value: gso, unit: unit(gso, 'up to 44 datagrams per skb'), anchor });
  } else {
    await pair.close();
    process.stdout.write('udp_io: this kernel has no UDP GSO/GRO; row skipped\n');
  }
  return rows;
}
