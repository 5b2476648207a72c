// A UDP socket with batched I/O (recvmmsg/sendmmsg, UDP GRO/GSO) through our
// small Node-API addon (src/). Node's dgram costs one event and one send
// syscall per datagram (~31 µs per send into a veth in a profile of the
// tunnel); here the kernel is crossed once per batch of up to 64 messages.
//
// Memory contract of onBatch: `batch.data` and the entry tables are reused
// for the next batch, which the addon writes only after onBatch returned.
// Read (or copy) a datagram inside onBatch; never keep a view of it. The
// WireGuard device decrypts each message into its own packet arena before
// returning, so the edge hands it views without copying.
import { loadNativeAddon } from '../../../netstack/native_addon';
import { AddressCache, entryPort } from './address';

export { ADDR_ENTRY, formatEntryAddress } from './address';

/** The largest UDP payload (IPv4: 65535 - 20 - 8). */
export const MAX_DATAGRAM = 65507;

interface NativeOpen {
  handle: object;
  port: number;
  family: 4 | 6;
  gso: number;
  gro: number;
  /** 1 when the addon can seal transport messages (Node's OpenSSL has ChaCha20-Poly1305). */
  seal: number;
  recv: ArrayBuffer;
  offsets: ArrayBuffer;
  lengths: ArrayBuffer;
  addrs: ArrayBuffer;
}

interface NativeBinding {
  open(address: string, port: number, gso: boolean, gro: boolean, onBatch: (count: number) => void): NativeOpen;
  send(handle: object, data: Uint8Array, address: string, port: number): number;
  sealSend(handle: object, packet: Uint8Array, key: Uint8Array, receiver: number, counterLo: number, counterHi: number, address: string, port: number): number;
  flush(handle: object): number;
  close(handle: object, onClosed?: () => void): void;
  counters(handle: object): Record<string, number>;
}

let loaded: NativeBinding | string | undefined;

/** The addon, or why it cannot be used (not built, not Linux, disabled by SIGHTLINE_UDP_NATIVE=off). */
export function loadUdpNative(): NativeBinding | string {
  if (process.env.SIGHTLINE_UDP_NATIVE === 'off') return 'disabled by SIGHTLINE_UDP_NATIVE=off';
  if (loaded === undefined) loaded = loadNativeAddon<NativeBinding>('udp_native.node', 'batched UDP I/O');
  return loaded;
}

/** One received batch; valid only during the onBatch call (see the memory contract above). */
export class RecvBatch {
  count = 0;
  private readonly cache = new AddressCache();

  constructor(
    /** The whole receive area; datagram i is data[offsetOf(i), offsetOf(i) + lengthOf(i)). */
    readonly data: Buffer,
    private readonly offsets: Int32Array,
    private readonly lengths: Int32Array,
    private readonly addrs: Buffer,
  ) {}

  offsetOf(i: number): number {
    return this.offsets[i];
  }

  lengthOf(i: number): number {
    return this.lengths[i];
  }

  /** A view (no copy) of datagram i. */
  datagram(i: number): Buffer {
    const off = this.offsets[i];
    return this.data.subarray(off, off + this.lengths[i]);
  }

  /** Source address text: dotted IPv4 for IPv4 peers (also on a dual-stack socket), RFC 5952 IPv6 otherwise. */
  addressOf(i: number): string {
    return this.cache.text(this.addrs, i);
  }

  portOf(i: number): number {
    return entryPort(this.addrs, i);
  }

}

export interface BatchUdpOptions {
  port: number;
  /** Bind address: an IPv4 address gives an IPv4 socket; default '::' (dual-stack). */
  address?: string;
  /** UDP GSO for runs of same-size datagrams to one destination (default on when the kernel has it, unless SIGHTLINE_UDP_GSO=off). */
  gso?: boolean;
  /** UDP GRO: the kernel may coalesce a flow's datagrams; the addon splits them again (default on, unless SIGHTLINE_UDP_GRO=off). */
  gro?: boolean;
  onBatch(batch: RecvBatch): void;
  /** An exception thrown by onBatch: counted and reported here instead of crashing the process. */
  onError?(err: Error): void;
}

export interface BatchUdpCounters extends Record<string, number> {
  rx_datagrams: number;
  tx_datagrams: number;
  tx_dropped_queue_full: number;
  tx_errors: number;
  callback_errors: number;
}

export class BatchUdpSocket {
  private flushScheduled = false;
  private closed: Promise<void> | null = null;
  private callbackErrors = 0;
  private readonly batch: RecvBatch;

  private constructor(
    private readonly native: NativeBinding,
    private readonly h: NativeOpen,
    private readonly opts: BatchUdpOptions,
  ) {
    this.batch = new RecvBatch(Buffer.from(h.recv), new Int32Array(h.offsets), new Int32Array(h.lengths), Buffer.from(h.addrs));
  }

  /** Binds the socket; rejects when the addon is missing or bind fails (e.g. EADDRINUSE). */
  static async open(opts: BatchUdpOptions): Promise<BatchUdpSocket> {
    const native = loadUdpNative();
    if (typeof native === 'string') throw new Error(native);
    let self: BatchUdpSocket | null = null;
    const h = native.open(opts.address ?? '::', opts.port, opts.gso ?? process.env.SIGHTLINE_UDP_GSO !== 'off', opts.gro ?? process.env.SIGHTLINE_UDP_GRO !== 'off', (count) => self?.onNativeBatch(count));
    self = new BatchUdpSocket(native, h, opts);
    return self;
  }

  get port(): number {
    return this.h.port;
  }

  get family(): 4 | 6 {
    return this.h.family;
  }

  /** Whether UDP GSO is in use (it switches itself off after a send the device refused). */
  get gso(): boolean {
    return this.native.counters(this.h.handle).gso === 1;
  }

  get gro(): boolean {
    return this.h.gro === 1;
  }

  get counters(): BatchUdpCounters {
    return { ...this.native.counters(this.h.handle), callback_errors: this.callbackErrors } as BatchUdpCounters;
  }

  /**
   * Queues a copy of `data` (the caller may reuse it at once). Sent with the
   * rest of the batch at the end of this macrotask, after the current
   * received batch, or at once when 64 are queued. False when dropped
   * (queue full, bad address, closed): counted, never thrown.
   */
  send(data: Uint8Array, address: string, port: number): boolean {
    if (this.closed !== null) return false;
    const r = this.native.send(this.h.handle, data, address, port);
    if (r > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushLater);
    }
    return r >= 0;
  }

  /** Whether sealSend is available (else the caller seals and calls send). */
  get seals(): boolean {
    return this.h.seal === 1;
  }

  /**
   * Queues the WireGuard transport message for `packet` (whitepaper §5.4.6),
   * sealed by the addon straight into its send queue; as send() otherwise.
   */
  sealSend(packet: Uint8Array, key: Uint8Array, receiver: number, counterLo: number, counterHi: number, address: string, port: number): boolean {
    if (this.closed !== null) return false;
    const r = this.native.sealSend(this.h.handle, packet, key, receiver, counterLo, counterHi, address, port);
    // Even when nothing is left queued: the flush at the end of the macrotask also clears the key from the addon.
    if (r >= 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushLater);
    }
    return r >= 0;
  }

  /** Sends what is queued now (the rest waits for the socket to become writable). */
  flush(): void {
    if (this.closed === null) this.native.flush(this.h.handle);
  }

  /** Idempotent; safe from inside onBatch. Queued datagrams get one last send attempt. */
  close(): Promise<void> {
    if (this.closed === null) this.closed = new Promise((resolve) => this.native.close(this.h.handle, resolve));
    return this.closed;
  }

  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private onNativeBatch(count: number): void {
    this.batch.count = count;
    try {
      this.opts.onBatch(this.batch);
    } catch (err) {
      this.callbackErrors++;
      this.opts.onError?.(err as Error);
    }
    // Whatever the batch produced (handshake responses, ACKs) leaves in one sendmmsg.
    this.flush();
  }
}
