// A TUN device (IFF_TUN | IFF_NO_PI: plain IPv4/IPv6 packets, no prefix)
// through our small Node-API addon (src/), for routed mode: packets read from
// the kernel arrive in batches on Node's event loop, packets to the kernel
// are written in batches, with no thread and no allocation per packet on the
// read side.
//
// Memory contract of onBatch: `batch.data` and the offset/length tables are
// reused for the next batch, which the addon writes only after onBatch
// returned. Read (or copy) a packet inside onBatch; never keep a view of it.
// write() never keeps the caller's Buffers: each packet is in the kernel, or
// copied into a bounded queue, when write() returns.
//
// Backpressure: toward the kernel, a write the fd refuses with EAGAIN is
// queued (TUN_WRITE_QUEUE packets, then dropped and counted). Toward us,
// pause() stops reading; the kernel then keeps up to the interface's
// txqueuelen packets (500 by default) and drops the rest, counted as TX
// drops of the interface (`ip -s link show NAME`).
import { loadNativeAddon } from '../native_addon';
import { explainTunOpenError, TunOpenError, tunDeviceFailure, tunNameProblem } from './errors';

export { explainTunOpenError, TunOpenError, tunNameProblem, TUN_NAME_MAX_BYTES, type TunOpenReason } from './errors';

/** The largest IP packet a read can return or a write can take. */
export const TUN_MAX_PACKET = 65535;
/** Packets per onBatch call at most. */
export const TUN_MAX_BATCH = 64;
/** Packets queued while the fd says EAGAIN; beyond it writes are dropped and counted. */
export const TUN_WRITE_QUEUE = 1024;

interface NativeOpen {
  handle: object;
  name: string;
  created: number;
  recv: ArrayBuffer;
  offsets: ArrayBuffer;
  lengths: ArrayBuffer;
}

type OnNativeBatch = (count: number) => void;
type OnNativeFatal = (errno: number) => void;

interface NativeTun {
  open(name: string, batchCap: number, onBatch: OnNativeBatch, onFatal: OnNativeFatal): NativeOpen;
  adopt(fd: number, batchCap: number, onBatch: OnNativeBatch, onFatal: OnNativeFatal): NativeOpen;
  write(handle: object, packets: readonly Uint8Array[], count: number): number;
  pause(handle: object): void;
  resume(handle: object): void;
  close(handle: object, onClosed?: () => void): void;
  counters(handle: object): Record<string, number>;
  packetPair(sndbuf: number): [number, number];
}

let loaded: NativeTun | string | undefined;

/** The addon, or why it cannot be used (not built, not Linux). Socket mode never loads it. */
export function loadTunNative(): NativeTun | string {
  if (loaded === undefined) loaded = loadNativeAddon<NativeTun>('tun_native.node', 'a TUN device (routed mode)');
  return loaded;
}

function requireNative(): NativeTun {
  const native = loadTunNative();
  if (typeof native === 'string') throw new TunOpenError('failed', native);
  return native;
}

/** Packets read in one batch; valid only during the onBatch call (see the memory contract above). */
export class TunBatch {
  count = 0;

  constructor(
    /** The whole receive area; packet i is data[offsetOf(i), offsetOf(i) + lengthOf(i)). */
    readonly data: Buffer,
    private readonly offsets: Int32Array,
    private readonly lengths: Int32Array,
  ) {}

  offsetOf(i: number): number {
    return this.offsets[i];
  }

  lengthOf(i: number): number {
    return this.lengths[i];
  }

  /** A view (no copy) of packet i: one whole IPv4 or IPv6 packet. */
  packet(i: number): Buffer {
    const off = this.offsets[i];
    return this.data.subarray(off, off + this.lengths[i]);
  }
}

export interface TunHandlers {
  /** Packets the kernel routed into the interface, up to `batchSize` per call. */
  onBatch(batch: TunBatch): void;
  /**
   * An exception thrown by onBatch (counted as callback_errors; reading goes
   * on), or once the device failed (the interface was deleted): then the
   * device is already closing.
   */
  onError?(err: Error): void;
  /** Packets per onBatch call at most, 1..TUN_MAX_BATCH (default TUN_MAX_BATCH; 1 means one call per packet). */
  batchSize?: number;
}

export interface TunOptions extends TunHandlers {
  /** Interface name, 1..15 bytes (see tunNameProblem); an existing TUN of this name is attached. */
  name: string;
}

export interface TunCounters extends Record<string, number> {
  rx_packets: number;
  rx_bytes: number;
  rx_batches: number;
  rx_errors: number;
  tx_packets: number;
  tx_bytes: number;
  /** Writes the fd refused with EAGAIN (then queued). */
  tx_eagain: number;
  tx_queued: number;
  tx_dropped_queue_full: number;
  /** Refused by the kernel as no IPv4/IPv6 packet (EINVAL), or empty / over TUN_MAX_PACKET / not a Uint8Array. */
  tx_errors_invalid: number;
  /** Refused because the interface is down (EIO) or gone (EBADFD). */
  tx_errors_down: number;
  tx_errors: number;
  last_errno: number;
  callback_errors: number;
}

export class TunDevice {
  private closed: Promise<void> | null = null;
  private callbackErrors = 0;
  private isPaused = false;
  private readonly batch: TunBatch;

  private constructor(
    private readonly native: NativeTun,
    private readonly h: NativeOpen,
    private readonly handlers: TunHandlers,
  ) {
    this.batch = new TunBatch(Buffer.from(h.recv), new Int32Array(h.offsets), new Int32Array(h.lengths));
  }

  /**
   * Creates the TUN `name`, or attaches to an existing one, and starts
   * reading. Throws a TunOpenError whose `reason` and message say what to do
   * (no /dev/net/tun, no CAP_NET_ADMIN, a bad name, a name taken by another
   * kind of interface, a TUN another process holds).
   */
  static open(opts: TunOptions): TunDevice {
    const problem = tunNameProblem(opts.name);
    if (problem !== null) throw new TunOpenError('bad_name', problem);
    const cap = batchCap(opts);
    const native = requireNative();
    return TunDevice.start(native, opts, (onBatch, onFatal) => {
      try {
        return native.open(opts.name, cap, onBatch, onFatal);
      } catch (err) {
        const e = err as Error & { errno?: number; syscall?: string };
        throw e.errno === undefined ? e : explainTunOpenError(opts.name, e.syscall ?? '', e.errno);
      }
    });
  }

  /**
   * Takes over an open packet fd: a TUN fd opened by a privileged parent, or
   * one end of packetPair() in tests. close() closes it. `name` is ''.
   */
  static adopt(fd: number, handlers: TunHandlers): TunDevice {
    const cap = batchCap(handlers);
    const native = requireNative();
    return TunDevice.start(native, handlers, (onBatch, onFatal) => native.adopt(fd, cap, onBatch, onFatal));
  }

  private static start(native: NativeTun, handlers: TunHandlers, open: (b: OnNativeBatch, f: OnNativeFatal) => NativeOpen): TunDevice {
    let self: TunDevice | null = null;
    const h = open(
      (count) => self?.onNativeBatch(count),
      (errno) => self?.onNativeFatal(errno),
    );
    self = new TunDevice(native, h, handlers);
    return self;
  }

  /** The interface name as the kernel has it ('' for an adopted fd). */
  get name(): string {
    return this.h.name;
  }

  /** True when the kernel made the interface for us: closing removes it. False when an existing (persistent) TUN was attached. */
  get created(): boolean {
    return this.h.created === 1;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get counters(): TunCounters {
    return { ...this.native.counters(this.h.handle), callback_errors: this.callbackErrors } as TunCounters;
  }

  /**
   * Writes packets[0..count) to the kernel, one write(2) per packet (a TUN
   * takes exactly one packet per write; there is no sendmmsg for it), all in
   * one call into the addon. Returns how many were written or queued; the
   * others were dropped and counted (queue full, invalid, interface down),
   * never thrown. The Buffers may be reused at once.
   */
  write(packets: readonly Uint8Array[], count = packets.length): number {
    if (this.closed !== null) return 0;
    return this.native.write(this.h.handle, packets, Math.min(count, packets.length));
  }

  /** Stops reading until resume(): the consumer is saturated (see backpressure above). Safe inside onBatch. */
  pause(): void {
    if (this.closed !== null || this.isPaused) return;
    this.isPaused = true;
    this.native.pause(this.h.handle);
  }

  resume(): void {
    if (this.closed !== null || !this.isPaused) return;
    this.isPaused = false;
    this.native.resume(this.h.handle);
  }

  /**
   * Idempotent; safe from inside onBatch. Queued packets get one last write
   * attempt; resolves once the fd is closed, which removes an interface the
   * kernel created for us.
   */
  close(): Promise<void> {
    if (this.closed === null) this.closed = new Promise((resolve) => this.native.close(this.h.handle, resolve));
    return this.closed;
  }

  private onNativeBatch(count: number): void {
    this.batch.count = count;
    try {
      this.handlers.onBatch(this.batch);
    } catch (err) {
      this.callbackErrors++;
      this.handlers.onError?.(err as Error);
    }
  }

  private onNativeFatal(errno: number): void {
    // close() only releases the fd; a failure there is reported like the fault itself.
    this.close().catch((err: unknown) => this.handlers.onError?.(err as Error));
    this.handlers.onError?.(tunDeviceFailure(this.name, errno));
  }
}

function batchCap(h: TunHandlers): number {
  const n = h.batchSize ?? TUN_MAX_BATCH;
  if (!Number.isInteger(n) || n < 1 || n > TUN_MAX_BATCH) throw new RangeError(`batchSize must be an integer 1..${TUN_MAX_BATCH}, got ${n}`);
  return n;
}

/**
 * A connected SOCK_SEQPACKET pair of fds: it keeps packet boundaries like a
 * TUN and refuses writes with EAGAIN when `sndbuf` bytes wait, so tests and
 * benchmarks drive batching and queueing through TunDevice.adopt without root.
 */
export function packetPair(sndbuf = 0): [number, number] {
  return requireNative().packetPair(sndbuf);
}
