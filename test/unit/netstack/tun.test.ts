// netstack/tun without root: the advice a person gets when a TUN cannot be
// opened, and the addon's batching, queueing and lifetime rules, driven
// through a SOCK_SEQPACKET pair that keeps packet boundaries like a TUN.
// The real device, in a network namespace, is in tun_device.test.ts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeAddon } from '../../../netstack/native_addon';
import { explainTunOpenError, loadTunNative, packetPair, TunDevice, TunOpenError, tunNameProblem, TUN_MAX_BATCH, TUN_WRITE_QUEUE, type TunBatch } from '../../../netstack/tun';
import { sleep, waitFor } from '../../../scripts/lab/netns';

const open: TunDevice[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

/** Both ends of a packet pair; `far` copies what it reads (batch memory is reused). */
function pair(sndbuf = 0, batchSize?: number): { near: TunDevice; far: TunDevice; got: Buffer[]; sizes: number[] } {
  const [a, b] = packetPair(sndbuf);
  const got: Buffer[] = [];
  const sizes: number[] = [];
  const near = TunDevice.adopt(a, { onBatch: () => undefined });
  const far = TunDevice.adopt(b, {
    batchSize,
    onBatch: (batch: TunBatch) => {
      sizes.push(batch.count);
      for (let i = 0; i < batch.count; i++) got.push(Buffer.from(batch.packet(i)));
    },
  });
  open.push(near, far);
  return { near, far, got, sizes };
}

function numbered(n: number, size = 200): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const p = Buffer.alloc(size, i & 0xff);
    p.writeUInt32BE(i, 0);
    return p;
  });
}

const seq = (got: Buffer[]) => got.map((p) => p.readUInt32BE(0));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('opening errors say what to do', () => {
  test('a name longer than IFNAMSIZ allows is refused before any syscall, naming the limit', () => {
    expect(tunNameProblem('sightline0')).toBeNull();
    expect(tunNameProblem('a'.repeat(15))).toBeNull();
    expect(tunNameProblem('a'.repeat(16))).toMatch(/too long: 16 bytes, at most 15 \(IFNAMSIZ/);
    expect(() => TunDevice.open({ name: 'sightline-routed0', onBatch: () => undefined })).toThrow(/too long/);
  });

  test.each(['', '-x', 'a b', 'tun%d', 'a/b', 'a:1', '.hidden'])('the name %j is refused (empty, option-like, template, or kernel-invalid)', (name) => {
    expect(tunNameProblem(name)).not.toBeNull();
    try {
      TunDevice.open({ name, onBatch: () => undefined });
      throw new Error('opened');
    } catch (err) {
      expect(err).toBeInstanceOf(TunOpenError);
      expect((err as TunOpenError).reason).toBe('bad_name');
    }
  });

  test('no /dev/net/tun (ENOENT at open) says the kernel or container lacks TUN', () => {
    const e = explainTunOpenError('sightline0', 'open /dev/net/tun', 2);
    expect(e.reason).toBe('no_tun');
    expect(e.message).toMatch(/^the kernel has no TUN support or \/dev\/net\/tun is not in this container: open \/dev\/net\/tun: ENOENT: no such file or directory/);
  });

  test('EPERM at TUNSETIFF (no CAP_NET_ADMIN) says routed mode needs root or the capability', () => {
    const e = explainTunOpenError('sightline0', 'TUNSETIFF', 1);
    expect(e.reason).toBe('not_permitted');
    expect(e.message).toMatch(/^routed mode needs root or CAP_NET_ADMIN: TUNSETIFF sightline0: EPERM: operation not permitted/);
    expect(explainTunOpenError('sightline0', 'open /dev/net/tun', 13).reason).toBe('not_permitted');
  });

  test('EINVAL at TUNSETIFF means the name belongs to an interface that is not a TUN', () => {
    const e = explainTunOpenError('eth0', 'TUNSETIFF', 22);
    expect(e.reason).toBe('not_a_tun');
    expect(e.message).toMatch(/interface "eth0" already exists and is not a single-queue TUN device/);
  });

  test('EBUSY at TUNSETIFF means another process holds the TUN', () => {
    expect(explainTunOpenError('sightline0', 'TUNSETIFF', 16).message).toMatch(/already open in another process/);
  });

  test('a missing addon is a reason string, not an exception (socket mode works without it)', () => {
    const empty = mkdtempSync(join(tmpdir(), 'sl-noaddon-'));
    const r = loadNativeAddon('tun_native.node', 'a TUN device', [empty]);
    expect(typeof r).toBe('string');
    expect(r).toMatch(/tun_native\.node not loadable \(run `npm install`/);
  });

  test('the addon is built and loads (npm install runs node-gyp for binding.gyp)', () => {
    expect(typeof loadTunNative()).toBe('object');
  });
});

describe('batched packet I/O (SOCK_SEQPACKET pair standing in for the TUN fd)', () => {
  test('2,000 packets written in batches arrive once, intact, in order, in batches of at most 64', async () => {
    const { near, got, sizes } = pair();
    const packets = numbered(2000);
    for (let i = 0; i < packets.length; i += 100) {
      expect(near.write(packets.slice(i, i + 100))).toBe(100);
      await waitFor('a round', () => (got.length >= i + 100 ? true : undefined), 5000, 2);
    }
    expect(seq(got)).toEqual(range(2000));
    got.forEach((p, i) => expect(p.equals(packets[i])).toBe(true));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(TUN_MAX_BATCH);
    expect(sizes.length).toBeLessThan(2000 / 4); // many packets per JavaScript call
    expect(near.counters).toMatchObject({ tx_packets: 2000, tx_bytes: 2000 * 200, tx_dropped_queue_full: 0 });
  });

  test('write(packets, count) writes only the first count packets of a reused array', async () => {
    const { near, got } = pair();
    const batch = numbered(10);
    expect(near.write(batch, 3)).toBe(3);
    await waitFor('3 packets', () => (got.length === 3 ? true : undefined));
    await sleep(20);
    expect(seq(got)).toEqual([0, 1, 2]);
  });

  test('batchSize 1 gives one onBatch call per packet', async () => {
    const { near, got, sizes } = pair(0, 1);
    near.write(numbered(50));
    await waitFor('50 packets', () => (got.length === 50 ? true : undefined));
    expect(sizes).toEqual(Array(50).fill(1));
  });

  test('EAGAIN: packets wait in a bounded queue, in order, and the excess is dropped and counted', async () => {
    const { near, far, got } = pair(4096);
    far.pause();
    const TOTAL = 3000;
    const accepted = near.write(numbered(TOTAL, 100));
    const c = near.counters;
    expect(c.tx_eagain).toBeGreaterThan(0);
    expect(c.tx_queued).toBe(TUN_WRITE_QUEUE);
    expect(accepted).toBe(c.tx_packets + TUN_WRITE_QUEUE);
    expect(c.tx_dropped_queue_full).toBe(TOTAL - accepted);
    far.resume();
    await waitFor('the queue to drain', () => (got.length === accepted ? true : undefined));
    expect(seq(got)).toEqual(range(accepted));
    expect(near.counters).toMatchObject({ tx_queued: 0, tx_packets: accepted });
  });

  test('empty, oversized and non-byte packets are dropped and counted, never thrown', () => {
    const { near } = pair();
    const bad = [Buffer.alloc(0), Buffer.alloc(65536), 'text' as unknown as Uint8Array, Buffer.from([0x45])];
    expect(near.write(bad)).toBe(1); // the 1-byte one: a socket takes it (a real TUN says EINVAL, see tun_device.test.ts)
    expect(near.counters.tx_errors_invalid).toBe(3);
  });

  test('close() from inside onBatch stops delivery without a crash, and later writes are refused', async () => {
    const [a, b] = packetPair();
    let calls = 0;
    let closing: Promise<void> | null = null;
    const near = TunDevice.adopt(a, { onBatch: () => undefined });
    open.push(near);
    const far = TunDevice.adopt(b, {
      batchSize: 4,
      onBatch: () => {
        calls++;
        closing = far.close();
      },
    });
    near.write(numbered(100));
    await waitFor('first batch', () => (calls > 0 ? true : undefined));
    await closing;
    await sleep(50);
    expect(calls).toBe(1);
    expect(far.write(numbered(1))).toBe(0);
  });

  test('an exception in onBatch is reported to onError and reading goes on', async () => {
    const [a, b] = packetPair();
    const errors: Error[] = [];
    let calls = 0;
    const near = TunDevice.adopt(a, { onBatch: () => undefined });
    const far = TunDevice.adopt(b, {
      onBatch: () => {
        if (++calls === 1) throw new Error('handler bug');
      },
      onError: (e) => errors.push(e),
    });
    open.push(near, far);
    near.write(numbered(1));
    await waitFor('first', () => (calls === 1 ? true : undefined));
    near.write(numbered(1));
    await waitFor('second', () => (calls === 2 ? true : undefined));
    expect(errors.map((e) => e.message)).toEqual(['handler bug']);
    expect(far.counters.callback_errors).toBe(1);
  });

  test('the far end going away is reported once to onError and closes the device', async () => {
    const [a, b] = packetPair();
    const errors: Error[] = [];
    const near = TunDevice.adopt(a, { onBatch: () => undefined, onError: (e) => errors.push(e) });
    open.push(near);
    const far = TunDevice.adopt(b, { onBatch: () => undefined });
    await far.close();
    await waitFor('the failure', () => (errors.length > 0 ? true : undefined));
    await sleep(50);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/other end closed/);
    expect(near.write(numbered(1))).toBe(0);
  });

  test('batchSize outside 1..64 is a programming error, thrown at once', () => {
    expect(() => TunDevice.adopt(0, { batchSize: 65, onBatch: () => undefined })).toThrow(RangeError);
  });
});
