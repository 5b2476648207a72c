// Upstream sockets read into one shared buffer (net's onread): every byte
// must still arrive intact, in order, with backpressure and the server's end
// passed on, whatever the destination does with the chunks it is given.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connectUpstream } from '../../../../netstack/egress/tcp_socket';
import { relay, type RelayResult, type RelayTap } from '../../../../netstack/egress/relay';
import { SharedBufferReads } from '../../../../netstack/egress/shared_reads';
import { TcpEndpointStream, type FlowDriver } from '../../../../netstack/tcp_stream';
import type { TcpEndpoint } from '../../../../netstack/tcp';

/** A client side that keeps every chunk it is given by reference (as a Transform's readable side would), acknowledging each after `delayMs`. */
class HoldingClient extends Duplex {
  readonly held: Buffer[] = [];
  /** The most bytes that ever waited in this stream's write queue. */
  maxQueued = 0;
  constructor(private readonly delayMs: number) {
    super({ allowHalfOpen: true, writableHighWaterMark: 16 * 1024 });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.held.push(chunk);
    this.maxQueued = Math.max(this.maxQueued, this.writableLength);
    if (this.delayMs === 0) cb();
    else setTimeout(cb, this.delayMs);
  }
  override _final(cb: () => void): void {
    this.push(null);
    cb();
  }
  bytes(): Buffer {
    return Buffer.concat(this.held);
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: Server;
let port: number;
const onConnection: Array<(s: Socket) => void> = [];

beforeAll(async () => {
  server = createServer({ allowHalfOpen: true }, (s) => onConnection.shift()?.(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** The next connection's server side does `serve`; resolves with the relay's result once both sides closed. */
async function relayed(serve: (s: Socket) => void, client: Duplex, beforeAttach?: () => Promise<void>, tap?: RelayTap): Promise<RelayResult> {
  onConnection.push(serve);
  const reads = new SharedBufferReads();
  const sock = await connectUpstream('127.0.0.1', port, 5000, reads);
  await beforeAttach?.();
  return new Promise((resolve) => {
    relay(client, sock, { serverReads: reads, onEnd: resolve, tap });
    // The client has nothing to send: its end lets both sides close.
    client.push(null);
  });
}

const ended = (c: Duplex) => new Promise<void>((r) => (c.writableFinished ? r() : c.once('finish', () => r())));

describe('upstream reads into the shared buffer', () => {
  test('two downloads at once, into clients that keep what they are given, arrive intact', async () => {
    const a = randomBytes(3 * 1024 * 1024);
    const b = randomBytes(2 * 1024 * 1024 + 17);
    const ca = new HoldingClient(0);
    const cb = new HoldingClient(1);
    const [ra, rb] = await Promise.all([
      relayed((s) => s.end(a), ca),
      relayed((s) => s.end(b), cb),
    ]);
    expect(sha(ca.bytes())).toBe(sha(a));
    expect(sha(cb.bytes())).toBe(sha(b));
    expect(ra).toMatchObject({ end: 'closed', fromServer: a.length });
    expect(rb).toMatchObject({ end: 'closed', fromServer: b.length });
  });

  test('a tap that keeps what it is shown sees the bytes as they were', async () => {
    const data = randomBytes(1024 * 1024);
    const seen: Buffer[] = [];
    await relayed((s) => s.end(data), new HoldingClient(0), undefined, {
      clientToServer: () => undefined,
      serverToClient: (chunk) => seen.push(chunk),
      end: () => undefined,
    });
    expect(sha(Buffer.concat(seen))).toBe(sha(data));
  });

  test('a slow client stops the reads: what waits for it stays near its high-water mark', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const client = new HoldingClient(2);
    await relayed((s) => s.end(data), client);
    expect(sha(client.bytes())).toBe(sha(data));
    // The mark (16 KiB) and the read that crossed it (at most 64 KiB); without the stop, megabytes.
    expect(client.maxQueued).toBeLessThanOrEqual(80 * 1024);
  });

  test('bytes and the end the server sent before the relay was attached are passed on', async () => {
    const client = new HoldingClient(0);
    const r = await relayed((s) => s.end('greeting before attach'), client, () => new Promise((res) => setTimeout(res, 50)));
    await ended(client);
    expect(client.bytes().toString()).toBe('greeting before attach');
    expect(r.fromServer).toBe(22);
  });

  test('a server that closed before the relay was attached, having sent nothing, ends the client', async () => {
    const client = new HoldingClient(0);
    const r = await relayed((s) => s.end(), client, () => new Promise((res) => setTimeout(res, 50)));
    await ended(client);
    expect(client.bytes().length).toBe(0);
    expect(r).toMatchObject({ end: 'closed', fromServer: 0 });
  });
});

/** An endpoint that takes at most `take` bytes per write, keeping copies as the real send queue does. */
function fakeEndpoint(take: { n: number }) {
  const got: Buffer[] = [];
  const ep = {
    state: 'ESTABLISHED',
    writableWithin: (room: number) => room,
    write: (data: Buffer) => {
      const n = Math.min(take.n, data.length);
      got.push(Buffer.from(data.subarray(0, n)));
      take.n -= n;
      return n;
    },
    read: () => null,
    abort: () => undefined,
    shutdownWrite: () => undefined,
  };
  return { ep: ep as unknown as TcpEndpoint, got };
}

const driver: FlowDriver = { flush: () => undefined, fail: (err) => { throw err; }, room: () => 1 << 30, waitForRoom: () => undefined };

describe('TcpEndpointStream.writeTransient', () => {
  test('what the endpoint cannot take now is copied: the caller may reuse its buffer at once', () => {
    const take = { n: 10 };
    const { ep, got } = fakeEndpoint(take);
    const stream = new TcpEndpointStream(ep, () => 0, driver);
    const shared = Buffer.from('0123456789abcdefghij');
    expect(stream.writeTransient(shared)).toBe(true);
    shared.fill(0x2e); // the next read overwrites the shared buffer
    expect(stream.writeTransient(shared.subarray(0, 4))).toBe(true); // queued behind the first: copied
    shared.fill(0x21);
    take.n = 100;
    stream.onWritable();
    expect(Buffer.concat(got).toString()).toBe('0123456789abcdefghij....');
    stream.destroy();
  });

  test('a chunk of the high-water mark left waiting asks for a drain, which comes once the endpoint took it', async () => {
    const take = { n: 0 };
    const { ep, got } = fakeEndpoint(take);
    const stream = new TcpEndpointStream(ep, () => 0, driver);
    const shared = Buffer.alloc(64 * 1024, 7);
    expect(stream.writeTransient(shared)).toBe(false);
    shared.fill(0);
    const drained = new Promise<void>((r) => stream.once('drain', () => r()));
    take.n = 1 << 20;
    stream.onWritable();
    await drained;
    expect(Buffer.concat(got).equals(Buffer.alloc(64 * 1024, 7))).toBe(true);
    stream.destroy();
  });
});
