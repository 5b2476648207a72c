// Hostile-input generator for tests: sends a bounded number of random,
// truncated, oversized and malformed WireGuard-looking datagrams to a port.
// Run: node dist/scripts/lab/udp_flood.js HOST PORT COUNT [SEED]
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { seededRandom } from './prng';

const KINDS = ['random', 'truncated_initiation', 'truncated_response', 'bad_cookie_reply', 'unknown_index_data', 'oversized', 'empty', 'bad_type'] as const;

// Message type in byte 0, reserved bytes zero, as far as the datagram reaches.
function typed(b: Buffer, type: number): void {
  for (let i = 0; i < 4 && i < b.length; i++) b[i] = i === 0 ? type & 0xff : 0;
}

export function floodDatagram(i: number, rand: () => number): Buffer {
  const kind = KINDS[i % KINDS.length];
  const bytes = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let j = 0; j < n; j++) b[j] = Math.floor(rand() * 256);
    return b;
  };
  switch (kind) {
    case 'random':
      return bytes(Math.floor(rand() * 1500));
    case 'truncated_initiation': {
      const b = bytes(1 + Math.floor(rand() * 147));
      typed(b, 1);
      return b;
    }
    case 'truncated_response': {
      const b = bytes(4 + Math.floor(rand() * 88));
      typed(b, 2);
      return b;
    }
    case 'bad_cookie_reply': {
      const b = bytes(64);
      typed(b, 3);
      return b;
    }
    case 'unknown_index_data': {
      const b = bytes(32 + Math.floor(rand() * 1400));
      typed(b, 4);
      return b;
    }
    case 'oversized': {
      const b = bytes(9000 + Math.floor(rand() * 20000));
      typed(b, 4);
      return b;
    }
    case 'empty':
      return Buffer.alloc(0);
    case 'bad_type': {
      const b = bytes(148);
      typed(b, 5 + Math.floor(rand() * 1000));
      return b;
    }
  }
}

export async function flood(host: string, port: number, count: number, seed = 1): Promise<void> {
  const rand = seededRandom(seed);
  const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.connect(port, host, r));
  const BATCH = 200;
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    await Promise.all(Array.from({ length: n }, (_, k) => new Promise<void>((r) => sock.send(floodDatagram(i + k, rand), () => r()))));
  }
  sock.close();
}

if (require.main === module) {
  const [host, port, count, seed] = process.argv.slice(2);
  flood(host, Number(port), Number(count), Number(seed ?? 1)).then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`flood failed: ${err.message}\n`);
      process.exit(1);
    },
  );
}
