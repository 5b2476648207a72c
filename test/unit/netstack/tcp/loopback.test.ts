// Two-endpoint transfer through a simulated lossy link with a fake clock:
// byte-exact delivery both ways under loss, reordering and duplication.
import { createCipheriv } from 'node:crypto';
import { TcpRepr } from '../../../../netstack/wire/tcp';
import { Cubic } from '../../../../netstack/tcp/cubic';
import { TcpEndpoint } from '../../../../netstack/tcp/endpoint';
import { SimClient } from './sim_client';
import { seededRandom } from '../../../../scripts/lab/prng';

interface LinkConfig {
  loss: number;
  dup: number;
  reorder: number;
  /** packets the bottleneck queue holds before tail drop */
  queue: number;
  /** one-way propagation delay (default 5 ms) */
  delayMs?: number;
  /** serialisation rate (default 100 Mbit/s) */
  mbps?: number;
  /**
   * Reorder like scripts/lab/udp_relay.ts: a datagram is held until the next
   * one overtakes it (5 ms at most), instead of being delayed by 1-4 ms.
   */
  relayReorder?: boolean;
  /** gap between a datagram and its duplicate (default 0.5 ms) */
  dupGapMs?: number;
}

/** One direction: serialisation at `mbps`, propagation `delayMs`, a drop-tail queue. */
class Link {
  private inFlight: Array<{ at: number; seg: TcpRepr }> = [];
  private busyUntil = 0;
  private held: { at: number; seg: TcpRepr } | null = null;
  delivered = 0;
  private readonly msPerByte: number;
  private readonly delay: number;
  constructor(private readonly rand: () => number, private readonly cfg: LinkConfig) {
    this.msPerByte = 8 / ((cfg.mbps ?? 100) * 1000);
    this.delay = cfg.delayMs ?? 5;
  }

  send(seg: TcpRepr, now: number): void {
    if (this.rand() < this.cfg.loss) return;
    const wire = 60 + seg.payload.length;
    const start = Math.max(now, this.busyUntil);
    if (start - now > this.cfg.queue * 1500 * this.msPerByte) return; // tail drop
    this.busyUntil = start + wire * this.msPerByte;
    let at = this.busyUntil + this.delay;
    // Copy: the sender may reuse the payload view after the call.
    const copy = new TcpRepr({ ...seg, options: { ...seg.options }, payload: Buffer.from(seg.payload) });
    if (this.cfg.relayReorder) {
      const h = this.held;
      if (h === null && this.rand() < this.cfg.reorder) {
        this.held = { at: at + 5, seg: copy };
        this.insertEntry(this.held);
        return;
      }
      if (h !== null) {
        // The held datagram leaves right after the one that overtook it.
        this.held = null;
        const i = this.inFlight.indexOf(h);
        if (i >= 0 && h.at > at) {
          this.inFlight.splice(i, 1);
          this.insert(at + 0.001, h.seg);
        }
      }
    } else if (this.rand() < this.cfg.reorder) {
      at += 1 + this.rand() * 3;
    }
    this.insert(at, copy);
    if (this.rand() < this.cfg.dup) this.insert(at + (this.cfg.dupGapMs ?? 0.5), new TcpRepr({ ...copy, payload: Buffer.from(copy.payload) }));
  }

  private insert(at: number, seg: TcpRepr): void {
    this.insertEntry({ at, seg });
  }

  private insertEntry(e: { at: number; seg: TcpRepr }): void {
    let i = this.inFlight.length;
    while (i > 0 && this.inFlight[i - 1].at > e.at) i--;
    this.inFlight.splice(i, 0, e);
  }

  nextAt(): number | null {
    return this.inFlight.length > 0 ? this.inFlight[0].at : null;
  }

  take(now: number): TcpRepr | null {
    if (this.inFlight.length === 0 || this.inFlight[0].at > now) return null;
    this.delivered++;
    const e = this.inFlight.shift() as { at: number; seg: TcpRepr };
    if (e === this.held) this.held = null;
    return e.seg;
  }
}

/** Deterministic test data: an AES-CTR keystream keyed by the PRNG. */
function randomBytes(rand: () => number, size: number): Buffer {
  const key = Buffer.alloc(16);
  for (let i = 0; i < 16; i += 4) key.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

interface RunResult {
  upData: Buffer;
  downData: Buffer;
  toServer: Buffer;
  toClient: Buffer;
  ep: TcpEndpoint;
  client: SimClient;
  simMs: number;
}

interface RunOptions {
  clientIsn: number;
  serverIsn: number;
  sack: boolean;
  ts: boolean;
  ws: boolean;
  cubic?: boolean;
  /** bytes the client sends (default: same as the download) */
  upSize?: number;
  /** server send buffer (default 512 KiB) */
  sendBufferBytes?: number;
}

function run(seed: number, size: number, link: LinkConfig, opts: RunOptions): RunResult {
  const rand = seededRandom(seed);
  const upData = randomBytes(rand, opts.upSize ?? size);
  const downData = randomBytes(rand, size);
  const c2s = new Link(rand, link);
  const s2c = new Link(rand, link);
  const client = new SimClient({ isn: opts.clientIsn, data: upData, sack: opts.sack, timestamps: opts.ts, windowScale: opts.ws });
  let now = 0;
  client.connect(now);
  let ep: TcpEndpoint | null = null;
  const serverGot: Buffer[] = [];
  let written = 0;
  const scratch = Buffer.alloc(2000);
  const serverWrite = (t: number) => {
    if (ep === null) return;
    while (written < size) {
      const n = ep.write(downData.subarray(written, Math.min(size, written + 256 * 1024)), t);
      written += n;
      if (n === 0) break;
    }
    if (written === size) ep.shutdownWrite(t);
  };
  for (let step = 0; step < 2_000_000; step++) {
    for (const s of client.out) c2s.send(s, now);
    client.out = [];
    if (ep !== null) {
      for (const s of ep.drainOutput()) s2c.send(s, now);
      for (const ev of ep.drainEvents()) {
        if (ev.type === 'readable') for (let b = ep.read(); b !== null; b = ep.read()) serverGot.push(b);
        if (ev.type === 'writable' || ev.type === 'established') serverWrite(now);
      }
    }
    if (client.done && ep !== null && (ep.state === 'CLOSED' || ep.state === 'TIME-WAIT')) break;
    const candidates = [c2s.nextAt(), s2c.nextAt(), client.nextWakeAt(), ep?.nextWakeAt() ?? null]
      .filter((x): x is number => x !== null);
    if (candidates.length === 0) break;
    now = Math.max(now, Math.min(...candidates));
    if (now > 3_600_000) break;
    for (let s = c2s.take(now); s !== null; s = c2s.take(now)) {
      if (ep === null) {
        ep = TcpEndpoint.fromSyn(s, now, { mss: 1380, isn: opts.serverIsn, sendBufferBytes: opts.sendBufferBytes ?? 512 * 1024, recvBufferBytes: 256 * 1024,
          congestion: opts.cubic ? (m) => new Cubic(m) : undefined });
        ep.accept(now);
        serverWrite(now);
        continue;
      }
      // Deliver through a reused scratch buffer to check the endpoint copies what it keeps.
      const view = scratch.subarray(0, s.payload.length);
      s.payload.copy(view);
      ep.onSegment(new TcpRepr({ ...s, payload: view }), now);
      scratch.fill(0xa5);
    }
    for (let s = s2c.take(now); s !== null; s = s2c.take(now)) client.onSegment(s, now);
    client.onTimer(now);
    if (ep !== null && (ep.nextWakeAt() ?? Infinity) <= now) ep.onTimer(now);
  }
  if (ep === null) throw new Error('no SYN reached the server');
  for (let b = ep.read(); b !== null; b = ep.read()) serverGot.push(b);
  return { upData, downData, toServer: Buffer.concat(serverGot), toClient: Buffer.concat(client.received), ep, client, simMs: now };
}

const CLEAN: LinkConfig = { loss: 0, dup: 0, reorder: 0, queue: 100_000 };
const HOSTILE: LinkConfig = { loss: 0.02, dup: 0.01, reorder: 0.03, queue: 64 };
const FULL = { clientIsn: 12345, serverIsn: 999, sack: true, ts: true, ws: true };

describe('loopback transfer through a simulated link', () => {
  test('1 MB each way on a lossless link arrives byte-exact with no retransmission and closes', () => {
    const r = run(1, 1 << 20, CLEAN, FULL);
    expect(r.toServer.equals(r.upData)).toBe(true);
    expect(r.toClient.equals(r.downData)).toBe(true);
    expect(r.ep.stats.retransmits).toBe(0);
    expect(['TIME-WAIT', 'CLOSED']).toContain(r.ep.state);
  });

  test('a drop-tail bottleneck (congestion loss only) is recovered byte-exact', () => {
    const r = run(2, 2 << 20, { loss: 0, dup: 0, reorder: 0, queue: 32 }, FULL);
    expect(r.toClient.equals(r.downData)).toBe(true);
    expect(r.toServer.equals(r.upData)).toBe(true);
    expect(r.ep.stats.fastRecoveries).toBeGreaterThan(0);
  });

  test.each([
    ['SACK + timestamps + window scale', FULL, 7],
    ['no options (NewReno without SACK)', { ...FULL, sack: false, ts: false, ws: false }, 8],
    ['CUBIC congestion control', { ...FULL, cubic: true }, 10],
    ['both ISNs just below 2^32 (transfer across the wrap)', { ...FULL, clientIsn: 0xffff_fff0, serverIsn: 0xffff_ff00 }, 9],
  ])('5 MB each way with 2%% loss, 1%% duplication, 3%% reordering: %s', (_name, opts, seed) => {
    const r = run(seed, 5 << 20, HOSTILE, opts);
    expect(r.toServer.equals(r.upData)).toBe(true);
    expect(r.toClient.equals(r.downData)).toBe(true);
    expect(r.client.done).toBe(true);
    expect(r.ep.stats.retransmits).toBeGreaterThan(0);
    expect(['TIME-WAIT', 'CLOSED']).toContain(r.ep.state);
  });
});


/**
 * The impairment measured end to end (scripts/lab/udp_relay.ts): 3% loss and
 * 3% reordering each way, 1% duplication, about 1 ms RTT, a 20 MB download.
 * Before RACK-TLP/PRR these seeds took 4.64-4.74 s simulated with 12-14 RTO
 * expirations each (RTO min 200 ms); with them, 0.49-0.65 s and none.
 */
const RELAY_1MS: LinkConfig = { loss: 0.03, dup: 0.01, reorder: 0.03, queue: 256, delayMs: 0.5, mbps: 1000,
  relayReorder: true, dupGapMs: 0.01 };
const DOWNLOAD = { ...FULL, upSize: 1000, sendBufferBytes: 4 * 1024 * 1024 };
const DOWNLOAD_SEEDS = [101, 102, 103];

describe('measurement: 20 MB download through the lossy relay at 1 ms RTT', () => {
  test.each(DOWNLOAD_SEEDS)('seed %i: byte-exact, simulated time and RTO count reported', (seed) => {
    const r = run(seed, 20 << 20, RELAY_1MS, DOWNLOAD);
    const s = r.ep.stats;
    // A measurement, not a timed assertion: printed for the report.
    console.log(`relay 20MB seed=${seed}: ${(r.simMs / 1000).toFixed(2)} s simulated, `
      + `${((20 * 8 * 1.048576) / (r.simMs / 1000)).toFixed(1)} Mbit/s, rto=${s.rtoExpirations} `
      + `fastRecoveries=${s.fastRecoveries} retransmits=${s.retransmits} segmentsOut=${s.segmentsOut}`);
    expect(r.toClient.equals(r.downData)).toBe(true);
    expect(r.toServer.equals(r.upData)).toBe(true);
    // Structural, not timed: losses are repaired by RACK and TLP, the RTO stays a last resort.
    expect(s.rtoExpirations).toBeLessThanOrEqual(1);
  });
});
