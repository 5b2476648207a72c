// The WireGuard UDP socket: thin I/O edge around the sans-IO device. One
// dual-stack socket when the host has IPv6, IPv4 only otherwise.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { Endpoint } from './protocol';

const V4_MAPPED = '::ffff:';

export interface UdpEdgeOptions {
  port: number;
  /** Bind address; default all addresses (dual-stack). */
  address?: string;
  onDatagram(data: Buffer, from: Endpoint): void;
  onError(err: Error): void;
}

export class UdpEdge {
  private constructor(
    private readonly socket: Socket,
    private readonly dualStack: boolean,
  ) {}

  static async listen(opts: UdpEdgeOptions): Promise<UdpEdge> {
    const wantV4Only = opts.address !== undefined && isIPv4(opts.address);
    if (!wantV4Only) {
      try {
        return await UdpEdge.bind('udp6', opts.address ?? '::', opts);
      } catch (err) {
        if (opts.address !== undefined) throw err;
        // No IPv6 on this host: fall back to IPv4 only.
      }
    }
    return UdpEdge.bind('udp4', opts.address ?? '0.0.0.0', opts);
  }

  private static bind(type: 'udp4' | 'udp6', address: string, opts: UdpEdgeOptions): Promise<UdpEdge> {
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
          const addr = rinfo.address.startsWith(V4_MAPPED) && isIPv4(rinfo.address.slice(V4_MAPPED.length)) ? rinfo.address.slice(V4_MAPPED.length) : rinfo.address;
          opts.onDatagram(msg, { address: addr, port: rinfo.port });
        });
        resolve(new UdpEdge(socket, dual));
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  get addressInfo(): { address: string; port: number; dualStack: boolean } {
    const a = this.socket.address();
    return { address: a.address, port: a.port, dualStack: this.dualStack };
  }

  send(data: Buffer, to: Endpoint): void {
    const address = this.dualStack && isIPv4(to.address) ? V4_MAPPED + to.address : to.address;
    this.socket.send(data, to.port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
