// TUN device I/O (netstack/tun) in a namespace: packets per second written
// into the kernel and read back out of it, with one packet per call against
// batches of 64 per call. The kernel forwards what we write straight back
// into the same TUN (ip_forward on, a route for the destination through the
// TUN), so writer and reader share one process and event loop as the
// concentrator's routed mode will. A bounded window of packets in flight
// stays below the interface's queue, so none are lost. Each row is the
// median of RUNS runs, with their spread.
import { IpAddress, buildUdpPacket } from '../../netstack/wire';
import { TUN_MAX_BATCH, loadTunNative, type TunBatch, type TunDevice } from '../../netstack/tun';
import { Lab, missingE2EPrerequisites } from '../lab/netns';
import { openLabTun } from '../lab/tun';
import type { BenchRow } from './table';

const SIZE = 1420; // an IP packet of a full 1420-byte tunnel MTU
const TOTAL = 100_000;
const WINDOW = 256; // below the default txqueuelen (500): the kernel never drops
const RUNS = 3;
const STALL_MS = 1000;
const SRC = IpAddress.parse('10.88.3.2');
const LOOP_DST = IpAddress.parse('10.88.1.3'); // routed back into the TUN
const SINK_DST = IpAddress.parse('10.88.2.3'); // blackhole route: the kernel takes and drops it

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

interface Setup {
  tun: TunDevice;
  received: number;
}

function packet(dst: IpAddress): Buffer {
  return buildUdpPacket(SRC, 40000, dst, 9, Buffer.alloc(SIZE - 28, 0x5a));
}

/** Packets/s written, `perCall` per write() call, to the blackhole route. */
function writeOnly(s: Setup, perCall: number): number {
  const batch = Array<Buffer>(perCall).fill(packet(SINK_DST));
  const start = process.hrtime.bigint();
  let written = 0;
  while (written < TOTAL) written += s.tun.write(batch);
  return written / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Packets/s written and read back (forwarded by the kernel), `perCall` per write(). */
async function roundTrip(s: Setup, perCall: number): Promise<number> {
  const batch = Array<Buffer>(perCall).fill(packet(LOOP_DST));
  s.received = 0;
  let sent = 0;
  let lastReceived = 0;
  let lastProgress = Date.now();
  const start = process.hrtime.bigint();
  while (s.received < TOTAL) {
    while (sent < TOTAL && sent - s.received < WINDOW) sent += s.tun.write(batch, Math.min(perCall, TOTAL - sent));
    await yieldToLoop();
    if (s.received !== lastReceived) {
      lastReceived = s.received;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > STALL_MS) {
      break; // lost packets: report what arrived
    }
  }
  return s.received / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function withTun<T>(batchSize: number, body: (s: Setup) => Promise<T> | T): Promise<T> {
  const lab = new Lab('tbn');
  const s: Setup = { tun: null as unknown as TunDevice, received: 0 };
  try {
    const ns = lab.namespace('gw');
    s.tun = openLabTun(lab, ns, {
      addresses: ['10.88.0.1/24'],
      routes: ['10.88.1.0/24'],
      batchSize,
      onBatch: (b: TunBatch) => {
        for (let i = 0; i < b.count; i++) if (b.lengthOf(i) === SIZE) s.received++;
      },
    });
    ns.execOk('ip', ['route', 'add', 'blackhole', '10.88.2.0/24']);
    ns.execOk('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', `net.ipv4.conf.${s.tun.name}.send_redirects=0`, 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${s.tun.name}.rp_filter=0`]);
    return await body(s);
  } finally {
    await s.tun?.close();
    await lab.cleanup();
  }
}

async function median(run: () => Promise<number>): Promise<{ value: number; spread: string }> {
  const v: number[] = [];
  for (let i = 0; i < RUNS; i++) v.push(await run());
  v.sort((a, b) => a - b);
  const k = (x: number) => `${Math.round(x / 1000)}k`;
  return { value: v[Math.floor(RUNS / 2)], spread: `${RUNS} runs ${k(v[0])}-${k(v[RUNS - 1])}` };
}

export async function benchTun(): Promise<BenchRow[]> {
  const missing = missingE2EPrerequisites(['ip', 'sysctl']);
  const native = loadTunNative();
  if (typeof native === 'string') missing.push(native);
  const names = ['write, 1 packet per call', 'write, 64 per call', 'write + kernel forward + read, 1 per call', 'write + kernel forward + read, 64 per call'];
  if (missing.length > 0) return names.map((name) => ({ name, value: NaN, unit: `skipped: needs ${missing.join(', ')}` }));
  const unit = (what: string, spread: string) => `packets/s (${SIZE} B, ${what}; ${spread})`;
  const rows: BenchRow[] = [];
  for (const perCall of [1, TUN_MAX_BATCH]) {
    const m = await withTun(TUN_MAX_BATCH, (s) => median(async () => writeOnly(s, perCall)));
    rows.push({ name: names[perCall === 1 ? 0 : 1], value: m.value, unit: unit('to a blackhole route', m.spread), anchor: perCall === 1 ? undefined : names[0] });
  }
  for (const perCall of [1, TUN_MAX_BATCH]) {
    const m = await withTun(perCall, (s) => median(() => roundTrip(s, perCall)));
    const what = perCall === 1 ? 'one onBatch call per packet' : `reads up to ${TUN_MAX_BATCH} per onBatch call`;
    rows.push({ name: names[perCall === 1 ? 2 : 3], value: m.value, unit: unit(what, m.spread), anchor: perCall === 1 ? undefined : names[2] });
  }
  return rows;
}
