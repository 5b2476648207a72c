// The WireGuard UDP socket: thin I/O edge around the sans-IO device. One
// dual-stack socket when the host has IPv6, IPv4 only otherwise.
//
// Two implementations behind one API: batched I/O through our addon
// (udp_native: recvmmsg/sendmmsg, UDP GRO/GSO) when it is built, and
// node:dgram otherwise, so a checkout without a compiler still runs.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { Endpoint } from '../protocol';
import { BatchUdpSocket, loadUdpNative, type RecvBatch } from '.';

const V4_MAPPED = '::ffff:';

export interface UdpEdgeOptions {
  port: number;
  /** Bind address; default all addresses (dual-stack). */
  address?: string;
  /**
   * One datagram. `data` is valid only during this call (the batched path
   * reuses its memory for the next batch): copy what must outlive it.
   */
  onDatagram(data: Buffer, from: Endpoint): void;
  /** After the datagrams of one receive batch (recvmmsg) were all passed on; after each with node:dgram. */
  onBatchEnd?(): void;
  /** Socket errors, and exceptions thrown by onDatagram (both paths catch them). */
  onError(err: Error): void;
  /** Why batched I/O is not used; called at most once per process. Default: a process warning. */
  onFallback?(reason: string): void;
  /** false forces node:dgram (tests, comparisons); default: batched when the addon loads. */
  batched?: boolean;
}

/**
 * A WireGuard transport message numbered but not sealed (the device's
 * OutboundTransport): the batched socket seals it into its send queue.
 */
export interface UnsealedTransport {
  readonly packet: Uint8Array;
  readonly key: Uint8Array;
  readonly receiverIndex: number;
  readonly counterLo: number;
  readonly counterHi: number;
  seal(): Buffer;
}

interface EdgeIo {
  readonly port: number;
  readonly address: string;
  send(data: Buffer, to: Endpoint): void;
  sendTransport(t: UnsealedTransport, to: Endpoint): void;
  close(): Promise<void>;
}

let fallbackReported = false;

export class UdpEdge {
  private constructor(
    private readonly io: EdgeIo,
    private readonly dualStack: boolean,
    /** 'batched' (addon) or 'dgram' (node:dgram fallback). */
    readonly kind: 'batched' | 'dgram',
  ) {}

  static async listen(opts: UdpEdgeOptions): Promise<UdpEdge> {
    const wantV4Only = opts.address !== undefined && isIPv4(opts.address);
    const native = opts.batched === false ? 'disabled for this edge' : loadUdpNative();
    if (typeof native === 'string' && opts.batched !== false) reportFallback(opts, native);
    const bind = typeof native === 'string' ? UdpEdge.bindDgram : UdpEdge.bindBatched;
    if (!wantV4Only) {
      try {
        return await bind('udp6', opts.address ?? '::', opts);
      } catch (err) {
        if (opts.address !== undefined) throw err;
        // No IPv6 on this host: fall back to IPv4 only.
      }
    }
    return bind('udp4', opts.address ?? '0.0.0.0', opts);
  }

  private static async bindBatched(type: 'udp4' | 'udp6', address: string, opts: UdpEdgeOptions): Promise<UdpEdge> {
    // One Endpoint object per run of datagrams from one source (a bulk transfer is
    // one peer's datagrams back to back); the device copies it when it keeps it.
    let lastFrom: Endpoint = { address: '', port: 0 };
    const onBatch = (b: RecvBatch) => {
      try {
        for (let i = 0; i < b.count; i++) {
          const address = b.addressOf(i);
          const port = b.portOf(i);
          if (address !== lastFrom.address || port !== lastFrom.port) lastFrom = { address, port };
          opts.onDatagram(b.datagram(i), lastFrom);
        }
      } finally {
        opts.onBatchEnd?.();
      }
    };
    const sock = await BatchUdpSocket.open({ port: opts.port, address, onBatch, onError: opts.onError });
    const io: EdgeIo = {
      get port() {
        return sock.port;
      },
      address,
      send: (data, to) => {
        sock.send(data, to.address, to.port);
      },
      sendTransport: sock.seals
        ? (t, to) => {
          sock.sealSend(t.packet, t.key, t.receiverIndex, t.counterLo, t.counterHi, to.address, to.port);
        }
        : (t, to) => {
          sock.send(t.seal(), to.address, to.port);
        },
      close: () => sock.close(),
    };
    return new UdpEdge(io, type === 'udp6', 'batched');
  }

  private static bindDgram(type: 'udp4' | 'udp6', address: string, opts: UdpEdgeOptions): Promise<UdpEdge> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type, ipv6Only: false, reuseAddr: false, recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
      const dual = type === 'udp6';
      const onBindError = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', onBindError);
      socket.bind({ port: opts.port, address, exclusive: true }, () => {
        socket.off('error', onBindError);
        socket.on('error', opts.onError);
        socket.on('message', (msg, rinfo) => {
          // Like the batched path: a throwing consumer is reported, never thrown into the socket's event.
          try {
            const addr = rinfo.address.startsWith(V4_MAPPED) && isIPv4(rinfo.address.slice(V4_MAPPED.length)) ? rinfo.address.slice(V4_MAPPED.length) : rinfo.address;
            opts.onDatagram(msg, { address: addr, port: rinfo.port });
            opts.onBatchEnd?.();
          } catch (err) {
            opts.onError(err instanceof Error ? err : new Error(String(err)));
          }
        });
        resolve(new UdpEdge(dgramIo(socket, dual, opts.onError), dual, 'dgram'));
      });
    });
  }

  get port(): number {
    return this.io.port;
  }

  get addressInfo(): { address: string; port: number; dualStack: boolean } {
    return { address: this.io.address, port: this.io.port, dualStack: this.dualStack };
  }

  send(data: Buffer, to: Endpoint): void {
    this.io.send(data, to);
  }

  /** Bytes as they are, or a transport message sealed on the way out (by the addon when it can). */
  sendDatagram(d: Buffer | UnsealedTransport, to: Endpoint): void {
    if (d instanceof Uint8Array) this.io.send(d, to);
    else this.io.sendTransport(d, to);
  }

  close(): Promise<void> {
    return this.io.close();
  }
}

function dgramIo(socket: Socket, dualStack: boolean, onError: (err: Error) => void): EdgeIo {
  const io: EdgeIo = {
    get port() {
      return socket.address().port;
    },
    get address() {
      return socket.address().address;
    },
    sendTransport: (t, to) => io.send(t.seal(), to),
    send: (data, to) => {
      // Like the batched path, never throws (a closed socket, an address of the other family): reported instead.
      try {
        socket.send(data, to.port, dualStack && isIPv4(to.address) ? V4_MAPPED + to.address : to.address);
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
      }
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  return io;
}

function reportFallback(opts: UdpEdgeOptions, reason: string): void {
  if (fallbackReported) return;
  fallbackReported = true;
  const text = `UDP edge uses node:dgram (one syscall per datagram): ${reason}`;
  if (opts.onFallback) opts.onFallback(text);
  else process.emitWarning(text, { code: 'SIGHTLINE_UDP_DGRAM' });
}
