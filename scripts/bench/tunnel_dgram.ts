// Diagnostic for the tunnel benchmark: how many WireGuard-sized datagrams per
// second Node receives through our UDP edge (vpn/edge/udp_edge.ts) on loopback.
// Every tunnelled packet costs one such receive, so this rate bounds what a
// single-threaded concentrator can forward before any protocol work.
//   node tunnel_dgram.js recv SECONDS   prints {"port":N}, then after SECONDS
//                                       of traffic {"received":N,"seconds":S}
//   node tunnel_dgram.js send PORT SECONDS SIZE
//                                       floods 127.0.0.1:PORT, prints {"sent":N,"seconds":S}
import { createSocket } from 'node:dgram';
import { UdpEdge } from '../../vpn/edge';

// Sends in flight at once: enough to keep libuv's send queue non-empty
// without buffering seconds of datagrams in the sender.
const SEND_WINDOW = 64;

async function receive(seconds: number): Promise<void> {
  let received = 0;
  let first = 0n;
  let edge: UdpEdge | null = null;
  const finish = (): void => {
    const s = Number(process.hrtime.bigint() - first) / 1e9;
    process.stdout.write(JSON.stringify({ received, seconds: s }) + '\n');
    edge?.close().then(() => process.exit(0), () => process.exit(1));
  };
  edge = await UdpEdge.listen({
    port: 0,
    address: '127.0.0.1',
    onDatagram: () => {
      if (received++ === 0) {
        first = process.hrtime.bigint();
        setTimeout(finish, seconds * 1000);
      }
    },
    onError: (err) => process.stderr.write(`receive error: ${err.message}\n`),
  });
  process.stdout.write(JSON.stringify({ port: edge.port }) + '\n');
}

function send(port: number, seconds: number, size: number): void {
  const socket = createSocket('udp4');
  const payload = Buffer.alloc(size, 0x5a);
  const started = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  let sent = 0;
  let inFlight = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    const s = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(JSON.stringify({ sent, seconds: s }) + '\n');
    socket.close();
  };
  const pump = (): void => {
    while (inFlight < SEND_WINDOW && Date.now() < end) {
      inFlight++;
      sent++;
      socket.send(payload, onSent);
    }
    if (inFlight === 0) finish();
  };
  function onSent(): void {
    inFlight--;
    if (inFlight < SEND_WINDOW / 2 || Date.now() >= end) pump();
  }
  socket.connect(port, '127.0.0.1', pump);
}

function main(): void {
  const [mode, a, b, c] = process.argv.slice(2);
  if (mode === 'recv') {
    receive(Number(a)).catch((err: unknown) => {
      process.stderr.write(`receive failed: ${String(err)}\n`);
      process.exit(1);
    });
  } else if (mode === 'send') {
    send(Number(a), Number(b), Number(c));
  } else {
    throw new Error('usage: tunnel_dgram recv SECONDS | send PORT SECONDS SIZE');
  }
}

main();
