// Test harness: WgDevices joined by an in-memory "UDP" network with a fake
// monotonic clock; the harness routes each call's output as the wiring does.
// Datagrams queue until flush(), so tests can drop, capture, replay or
// re-address them.
import { DeviceOptions, WgDevice } from '../../../../vpn/protocol/device';
import type { DeviceEvent, DeviceOutput } from '../../../../vpn/protocol/output';
import { PrivateKey } from '../../../../vpn/protocol/crypto';
import { Endpoint, endpointText } from '../../../../vpn/protocol/endpoint';
import { WgPeer } from '../../../../vpn/protocol/peer';

export interface Datagram {
  data: Buffer;
  from: Endpoint;
  to: Endpoint;
}

/** A minimal IPv4 header + payload, so the receiver can strip padding by the total length. */
export function ipv4(payload: string | Buffer, id = 0): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const pkt = Buffer.alloc(20 + body.length);
  pkt[0] = 0x45;
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(id, 4);
  pkt[8] = 64;
  pkt[9] = 17;
  pkt.set([10, 0, 0, 1], 12);
  pkt.set([10, 0, 0, 2], 16);
  body.copy(pkt, 20);
  return pkt;
}

export const payloadOf = (pkt: Buffer): string => pkt.subarray(20).toString();

/**
 * The device as the harness drives it: every call's output goes to the net
 * (datagrams), to the node's delivered list (packets) and events, as the
 * concentrator's loop routes it.
 */
class NetDevice extends WgDevice {
  constructor(private readonly node: Node, opts: DeviceOptions) {
    super(opts);
  }

  override receive(datagram: Buffer, from: Endpoint, now: number): DeviceOutput {
    return this.node.take(super.receive(datagram, from, now));
  }

  override send(peer: WgPeer, packet: Buffer, now: number): DeviceOutput {
    return this.node.take(super.send(peer, packet, now));
  }

  override tick(now: number): DeviceOutput {
    return this.node.take(super.tick(now));
  }

  override initiateHandshake(peer: WgPeer, now: number): DeviceOutput {
    return this.node.take(super.initiateHandshake(peer, now));
  }
}

export class Node {
  readonly device: WgDevice;
  readonly privateKey = PrivateKey.generate();
  readonly delivered: Array<{ peer: WgPeer; packet: Buffer }> = [];
  readonly events: DeviceEvent[] = [];
  /** Where delivered packets go (default: the delivered list); a test may hand them to a stack. */
  deliver: (peer: WgPeer, packet: Buffer) => void = (peer, packet) => this.delivered.push({ peer, packet: Buffer.from(packet) });

  constructor(readonly net: FakeNet, readonly name: string, public endpoint: Endpoint, loadThreshold?: number, extra: Pick<DeviceOptions, 'acceptEndpoint'> = {}) {
    this.device = new NetDevice(this, {
      ...extra,
      privateKey: this.privateKey,
      wallClock: () => net.wallBase + net.now,
      handshakesPerSecondUnderLoad: loadThreshold,
    });
  }

  /** Routes one call's output, as the concentrator does. */
  take(out: DeviceOutput): DeviceOutput {
    for (let i = 0; i < out.datagrams.length; i++) this.net.emitted({ data: out.bytes(i), from: this.endpoint, to: out.endpoints[i] });
    this.events.push(...out.events);
    if (out.packet !== null && out.peer !== null) this.deliver(out.peer, out.packet);
    return out;
  }

  get publicKey() {
    return this.device.publicKey;
  }

  /** The peer object this node holds for `other`. */
  peerOf(other: Node): WgPeer {
    const p = this.device.peer(other.publicKey);
    if (!p) throw new Error(`${this.name} has no peer ${other.name}`);
    return p;
  }

  send(other: Node, payload: string): void {
    this.device.send(this.peerOf(other), ipv4(payload), this.net.now);
  }

  texts(): string[] {
    return this.delivered.map((d) => payloadOf(d.packet));
  }

  eventTypes(): string[] {
    return this.events.map((e) => e.type);
  }
}

export class FakeNet {
  now = 1_000_000;
  readonly wallBase = Date.UTC(2026, 0, 1);
  readonly inFlight: Datagram[] = [];
  /** Every datagram any device ever sent (delivered or lost), for capture/replay. */
  readonly log: Datagram[] = [];
  /** Return false to lose a datagram. */
  filter: (d: Datagram) => boolean = () => true;
  private readonly nodes: Node[] = [];
  private nextPort = 51820;

  node(name: string, loadThreshold?: number, extra: Pick<DeviceOptions, 'acceptEndpoint'> = {}): Node {
    const n = new Node(this, name, { address: `192.0.2.${this.nodes.length + 1}`, port: this.nextPort++ }, loadThreshold, extra);
    this.nodes.push(n);
    return n;
  }

  /** `client` knows `server`'s endpoint; the server learns the client's from its first handshake. */
  link(client: Node, server: Node, opts: { psk?: Buffer; serverPsk?: Buffer; keepalive?: number } = {}): void {
    client.device.addPeer({
      publicKey: server.publicKey, endpoint: { ...server.endpoint }, presharedKey: opts.psk,
      persistentKeepaliveSeconds: opts.keepalive,
    });
    server.device.addPeer({ publicKey: client.publicKey, presharedKey: opts.serverPsk ?? opts.psk });
  }

  emitted(d: Datagram): void {
    this.inFlight.push(d);
    this.log.push(d);
  }

  deliver(d: Datagram): void {
    const target = this.nodes.find((n) => endpointText(n.endpoint) === endpointText(d.to));
    target?.device.receive(d.data, d.from, this.now);
  }

  /** Delivers queued datagrams (and whatever they trigger) in FIFO order; bounded. */
  flush(limit = 10_000): number {
    let n = 0;
    while (this.inFlight.length > 0 && n < limit) {
      const d = this.inFlight.shift() as Datagram;
      n++;
      if (this.filter(d)) this.deliver(d);
    }
    return n;
  }

  /** Moves the clock forward in `step` increments, ticking every device and flushing. */
  advance(ms: number, step = 100): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + step);
      for (const n of this.nodes) n.device.tick(this.now);
      this.flush();
    }
  }

  /** Messages of a given WireGuard type among those queued right now. */
  queuedOfType(type: number): Datagram[] {
    return this.inFlight.filter((d) => d.data[0] === type);
  }
}

/**
 * A client linked to a server, with one packet delivered: the server has a
 * session and knows the client's endpoint. `server` options as FakeNet.node.
 */
export function establishedPair(server: { loadThreshold?: number } & Pick<DeviceOptions, 'acceptEndpoint'> = {}) {
  const net = new FakeNet();
  const client = net.node('client');
  const srv = net.node('server', server.loadThreshold, { acceptEndpoint: server.acceptEndpoint });
  net.link(client, srv);
  client.send(srv, 'hello');
  net.flush();
  return { net, client, server: srv };
}
