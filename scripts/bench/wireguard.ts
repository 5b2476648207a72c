// WireGuard core throughput in one process: two WgDevices wired back to back
// (no sockets), so the numbers are the protocol + crypto cost alone.
// Anchor: the bare ChaCha20-Poly1305 seal+open of the same packets through
// sodium-native, i.e. the floor our transport path adds its overhead to.
import { WgDevice, WgPeer, PrivateKey, REKEY_TIMEOUT, type DeviceOutput, type Endpoint } from '../../vpn/protocol';
import { sodium } from '../../vpn/protocol/sodium';

const PACKET_SIZE = 1420;
const PACKETS = 200_000;
const WARMUP_PACKETS = 20_000;
const HANDSHAKES = 2000;
const WARMUP_HANDSHAKES = 100;

interface Row { name: string; value: number; unit: string; anchor?: string }

function ipv4Packet(size: number): Buffer {
  const p = Buffer.alloc(size, 0xab);
  p[0] = 0x45;
  p.writeUInt16BE(size, 2);
  return p;
}

interface Pair { a: WgDevice; b: WgDevice; peerOfA: WgPeer; clock: { now: number }; delivered: { n: number }; run(from: WgDevice, out: DeviceOutput): void }

/** Two devices whose outputs feed each other synchronously (as two concentrators' loops would). */
function backToBack(): Pair {
  const clock = { now: 1_000_000 };
  const delivered = { n: 0 };
  const epA: Endpoint = { address: '127.0.0.1', port: 1 };
  const epB: Endpoint = { address: '127.0.0.1', port: 2 };
  const wall = (): number => 1_767_225_600_000 + clock.now;
  const a = new WgDevice({ privateKey: PrivateKey.generate(), wallClock: wall });
  const b = new WgDevice({ privateKey: PrivateKey.generate(), wallClock: wall });
  /** Counts delivered packets and hands every datagram to the other device, until nothing is left to send (each call refills its output). */
  const run = (first: WgDevice, firstOut: DeviceOutput): void => {
    let from = first;
    let out = firstOut;
    for (;;) {
      if (out.packet !== null) delivered.n++;
      const n = out.datagrams.length;
      if (n === 0) return;
      const to = from === a ? b : a;
      const src = from === a ? epA : epB;
      if (n > 1) {
        // Sealed now: the records of `out` are reused by the sender's next call.
        const sealed = out.datagrams.map((_, i) => out.bytes(i));
        for (const data of sealed) run(to, to.receive(data, src, clock.now));
        return;
      }
      out = to.receive(out.bytes(0), src, clock.now);
      from = to;
    }
  };
  const peerOfA = a.addPeer({ publicKey: b.publicKey, endpoint: epB });
  b.addPeer({ publicKey: a.publicKey });
  return { a, b, peerOfA, clock, delivered, run };
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function benchTransport(): Row[] {
  const { a, peerOfA, clock, delivered, run } = backToBack();
  const packet = ipv4Packet(PACKET_SIZE);
  run(a, a.send(peerOfA, packet, clock.now)); // handshake + first packet
  for (let i = 0; i < WARMUP_PACKETS; i++) run(a, a.send(peerOfA, packet, clock.now));
  const before = delivered.n;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PACKETS; i++) run(a, a.send(peerOfA, packet, clock.now));
  const s = seconds(t0);
  if (delivered.n - before !== PACKETS) throw new Error(`transport bench lost packets: ${delivered.n - before}/${PACKETS}`);
  const pps = PACKETS / s;
  return [
    { name: `transport encrypt+decrypt ${PACKET_SIZE} B`, value: pps, unit: 'packets/s', anchor: `raw AEAD seal+open ${PACKET_SIZE} B` },
    { name: `transport encrypt+decrypt ${PACKET_SIZE} B (payload)`, value: (pps * PACKET_SIZE * 8) / 1e6, unit: 'Mbit/s' },
  ];
}

function benchRawAead(): Row {
  const key = Buffer.alloc(32, 7);
  const nonce = Buffer.alloc(12);
  const plain = Buffer.alloc(PACKET_SIZE + 4); // padded to 16 as on the wire
  const sealed = Buffer.alloc(plain.length + 16);
  const opened = Buffer.alloc(plain.length);
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      nonce.writeUInt32LE(i, 4);
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plain, null, null, nonce, key);
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(opened, null, sealed, null, nonce, key);
    }
  };
  run(WARMUP_PACKETS);
  const t0 = process.hrtime.bigint();
  run(PACKETS);
  return { name: `raw AEAD seal+open ${PACKET_SIZE} B`, value: PACKETS / seconds(t0), unit: 'packets/s' };
}

function benchHandshakes(): Row {
  const { a, peerOfA, clock, run: deliver } = backToBack();
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      // Initiations are rate-limited to one per REKEY_TIMEOUT per peer (§6.4).
      clock.now += REKEY_TIMEOUT + 1;
      deliver(a, a.initiateHandshake(peerOfA, clock.now));
    }
  };
  run(WARMUP_HANDSHAKES);
  const completedBefore = a.counters.handshake_complete ?? 0;
  const t0 = process.hrtime.bigint();
  run(HANDSHAKES);
  const s = seconds(t0);
  const completed = (a.counters.handshake_complete ?? 0) - completedBefore;
  if (completed !== HANDSHAKES) throw new Error(`handshake bench: ${completed}/${HANDSHAKES} completed`);
  return { name: 'handshake (initiation+response+confirm, both sides)', value: HANDSHAKES / s, unit: 'handshakes/s' };
}

export async function benchWireguard(): Promise<Array<{ name: string; value: number; unit: string; anchor?: string }>> {
  const raw = benchRawAead();
  return [...benchTransport(), raw, benchHandshakes()];
}
