// TUN device I/O (netstack/tun) in a namespace: packets per second written
// into the kernel and read back out of it, one packet per call against
// batches of 64 per call. The kernel forwards what we write straight back
// into the TUN it came from (ip_forward on, a route for the destination
// through that TUN), so writer and reader share one process and event loop
// as the concentrator's routed mode will. A bounded window of packets in
// flight stays below the interface's queue, so none are lost. Two TUNs (one
// read one packet per onBatch call, one up to 64) live in one namespace and
// their runs alternate, so both see the same load on a busy machine; each row
// is the median of RUNS runs, with their spread.
import { IpAddress, buildUdpPacket } from '../../netstack/wire';
import { TUN_MAX_BATCH, loadTunNative, type TunBatch, type TunDevice } from '../../netstack/tun';
import { Lab, missingE2EPrerequisites } from '../lab/netns';
import { openLabTun } from '../lab/tun';
import type { BenchRow } from './table';

const SIZE = 1420; // an IP packet of a full 1420-byte tunnel MTU
const TOTAL = 300_000;
const WINDOW = 256; // below the default txqueuelen (500): the kernel never drops
const RUNS = 3;
const STALL_MS = 1000;
const SRC = IpAddress.parse('10.88.9.2');
const SINK_DST = IpAddress.parse('10.88.8.3'); // blackhole route: the kernel takes and drops it

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** One TUN, read `perCall` packets per onBatch at most, written `perCall` per write(). */
interface Side {
  perCall: number;
  tun: TunDevice;
  /** Routed back into this TUN. */
  loopDst: IpAddress;
  received: number;
}

function packets(dst: IpAddress, n: number): Buffer[] {
  return Array<Buffer>(n).fill(buildUdpPacket(SRC, 40000, dst, 9, Buffer.alloc(SIZE - 28, 0x5a)));
}

/** Packets/s written to the blackhole route. */
function writeOnly(s: Side): number {
  const batch = packets(SINK_DST, s.perCall);
  const start = process.hrtime.bigint();
  let written = 0;
  while (written < TOTAL) written += s.tun.write(batch);
  return written / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Packets/s written and read back (forwarded by the kernel into the same TUN). */
async function roundTrip(s: Side): Promise<number> {
  const batch = packets(s.loopDst, s.perCall);
  s.received = 0;
  let sent = 0;
  let lastReceived = 0;
  let lastProgress = Date.now();
  const start = process.hrtime.bigint();
  while (s.received < TOTAL) {
    while (sent < TOTAL && sent - s.received < WINDOW) sent += s.tun.write(batch, Math.min(s.perCall, TOTAL - sent));
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

async function withSides<T>(body: (one: Side, batched: Side) => Promise<T>): Promise<T> {
  const lab = new Lab('tbn');
  const sides: Side[] = [];
  try {
    const ns = lab.namespace('gw');
    ns.execOk('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.all.rp_filter=0']);
    ns.execOk('ip', ['route', 'add', 'blackhole', '10.88.8.0/24']);
    for (const [i, perCall] of [1, TUN_MAX_BATCH].entries()) {
      const side: Side = { perCall, tun: null as unknown as TunDevice, loopDst: IpAddress.parse(`10.88.${i + 1}.3`), received: 0 };
      side.tun = openLabTun(lab, ns, {
        addresses: [`10.88.${i + 4}.1/24`],
        routes: [`10.88.${i + 1}.0/24`],
        batchSize: perCall,
        onBatch: (b: TunBatch) => {
          for (let k = 0; k < b.count; k++) if (b.lengthOf(k) === SIZE) side.received++;
        },
      });
      ns.execOk('sysctl', ['-q', '-w', `net.ipv4.conf.${side.tun.name}.send_redirects=0`, `net.ipv4.conf.${side.tun.name}.rp_filter=0`]);
      sides.push(side);
    }
    return await body(sides[0], sides[1]);
  } finally {
    await Promise.all(sides.map((s) => s.tun.close()));
    await lab.cleanup();
  }
}

interface Spread {
  value: number;
  spread: string;
}

/** Runs a and b alternately RUNS times each: their medians and spreads. */
async function alternate(a: () => Promise<number>, b: () => Promise<number>): Promise<[Spread, Spread]> {
  const va: number[] = [];
  const vb: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    va.push(await a());
    vb.push(await b());
  }
  const k = (x: number) => `${Math.round(x / 1000)}k`;
  const summary = (v: number[]): Spread => {
    v.sort((x, y) => x - y);
    return { value: v[Math.floor(RUNS / 2)], spread: `median of ${RUNS}, ${k(v[0])}-${k(v[RUNS - 1])}` };
  };
  return [summary(va), summary(vb)];
}

const NAMES = ['write, 1 packet per call', 'write, 64 per call', 'write + kernel forward + read, 1 per call', 'write + kernel forward + read, 64 per call'];

export async function benchTun(): Promise<BenchRow[]> {
  const missing = missingE2EPrerequisites(['ip', 'sysctl']);
  const native = loadTunNative();
  if (typeof native === 'string') missing.push(native);
  if (missing.length > 0) return NAMES.map((name) => ({ name, value: NaN, unit: `skipped: needs ${missing.join(', ')}` }));
  const unit = (what: string, s: Spread) => `packets/s (${SIZE} B, ${what}; ${s.spread})`;
  return withSides(async (one, batched) => {
    const [w1, w64] = await alternate(async () => writeOnly(one), async () => writeOnly(batched));
    const [r1, r64] = await alternate(() => roundTrip(one), () => roundTrip(batched));
    return [
      { name: NAMES[0], value: w1.value, unit: unit('to a blackhole route', w1) },
      { name: NAMES[1], value: w64.value, unit: unit('to a blackhole route', w64), anchor: NAMES[0] },
      { name: NAMES[2], value: r1.value, unit: unit('one onBatch call per packet', r1) },
      { name: NAMES[3], value: r64.value, unit: unit(`up to ${TUN_MAX_BATCH} packets per onBatch call`, r64), anchor: NAMES[2] },
    ];
  });
}
