// What the device returns from each call (sans-IO, like TcpEndpoint's
// drained output): datagrams for the UDP edge, the packet for the stack,
// events for the records.
import type { Endpoint } from './endpoint';
import type { Keypair } from './keypair';
import type { WgPeer } from './peer';
import { numberTransport, OutboundTransport } from './transport';

/** A message for UDP: bytes as they go on the wire, or a transport message still to seal. */
export type Datagram = Buffer | OutboundTransport;

export type DeviceEvent<T = void> =
  | { type: 'handshake_complete'; peer: WgPeer<T> }
  | { type: 'endpoint_changed'; peer: WgPeer<T>; from: Endpoint | undefined; to: Endpoint }
  | { type: 'session_expired'; peer: WgPeer<T> }
  | { type: 'handshake_failed'; peer: WgPeer<T> }
  | { type: 'drop'; reason: string; peer?: WgPeer<T> };

/**
 * What one call of the device produced. The device refills the same object
 * on every call (no allocation per packet), so read it before the next call.
 */
export class DeviceOutput<T = void> {
  /**
   * WireGuard messages to put on UDP, in order: datagrams[i] goes to
   * endpoints[i]. Transport messages come numbered, not sealed: the writer
   * seals them (UdpEdge.sendDatagram, or bytes(i)) before the device's next call.
   */
  readonly datagrams: Datagram[] = [];
  readonly endpoints: Endpoint[] = [];
  /**
   * receive() of a transport message: the decrypted inner IP packet (padding
   * removed) and the peer it came from; null otherwise, keepalives included.
   */
  packet: Buffer | null = null;
  peer: WgPeer<T> | null = null;
  readonly events: DeviceEvent<T>[] = [];
  /** After the call: when tick() is next due (Infinity when no timer is pending); see WgDevice.nextTimerAt. */
  wakeAt = Infinity;

  /** Reused transport records: a call numbers at most a few hundred, none allocated per packet. */
  private readonly transports: OutboundTransport[] = [];
  private transportsUsed = 0;

  /** Datagram i as bytes: a transport message is sealed here (sodium-native). */
  bytes(i: number): Buffer {
    const d = this.datagrams[i];
    return d instanceof OutboundTransport ? d.seal() : d;
  }

  /** @internal The device starts every call with an empty output. */
  clear(): void {
    // pop() stays inline where `length = 0` is a runtime call: this runs twice per packet.
    const { datagrams, endpoints, events } = this;
    while (datagrams.length > 0) {
      datagrams.pop();
      endpoints.pop();
    }
    while (events.length > 0) events.pop();
    const { transports } = this;
    for (let i = 0; i < this.transportsUsed; i++) transports[i].release();
    this.transportsUsed = 0;
    this.packet = null;
    this.peer = null;
  }

  /** @internal */
  sendDatagram(data: Buffer, to: Endpoint): void {
    this.datagrams.push(data);
    this.endpoints.push(to);
  }

  /** @internal Numbers `packet` as the keypair's next transport message, to be sealed by the writer. */
  sendTransport(keypair: Keypair, packet: Uint8Array, to: Endpoint): OutboundTransport {
    let t = this.transports[this.transportsUsed];
    if (t === undefined) this.transports.push((t = new OutboundTransport()));
    this.transportsUsed++;
    numberTransport(keypair, packet, t);
    this.datagrams.push(t);
    this.endpoints.push(to);
    return t;
  }
}
