// UDP egress sockets: a destination the OS cannot connect to (a scoped
// multicast address such as mDNS's ff02::fb, which browsers send to) is an
// error for that flow, never an exception out of the event loop. A datagram
// is only lent to send(): the socket keeps a copy of its own.
import { createSocket, Socket } from 'node:dgram';
import { osUdpEgress } from '../../../../netstack';
import { QUEUED_DATAGRAM_COST } from '../../../../netstack/egress/udp_socket';

test('a connect the OS refuses ends the socket with its error code (onFailed); datagrams queued before it are dropped, not sent', async () => {
  const errors: string[] = [];
  const sock = osUdpEgress(6, 'ff02::fb', 5353, { onMessage: () => undefined, onError: () => undefined, onFailed: (code) => errors.push(code) });
  sock.send(Buffer.from('mdns query'));
  sock.send(Buffer.from('another'));
  for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  sock.send(Buffer.from('after the failure'));
  sock.close();
  expect(errors).toEqual(['EINVAL']);
});

/** Bytes in memory of their own (not a slice of Node's shared pool, which a copy may come from too). */
function own(text: string): Buffer {
  const b = Buffer.allocUnsafeSlow(text.length);
  b.write(text);
  return b;
}

test('a datagram is handed to Node as a copy of its own, before and after the connect: its packet memory may be reused at once', async () => {
  const server = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
  const got: string[] = [];
  server.on('message', (m) => got.push(m.toString()));
  const given: Buffer[] = [];
  const send = jest.spyOn(Socket.prototype, 'send');
  const sock = osUdpEgress(4, '127.0.0.1', server.address().port, { onMessage: () => undefined, onError: () => undefined, onFailed: () => undefined });
  try {
    // Queued while connecting, then sent once connected; each buffer is
    // written over right after the call, as a recycled packet would be.
    const early = own('queued before the connect');
    sock.send(early);
    given.push(early);
    early.fill(0x21);
    for (let i = 0; i < 50 && send.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const late = own('sent once connected');
    sock.send(late);
    given.push(late);
    late.fill(0x21);
    for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(['queued before the connect', 'sent once connected']);
    for (const [data] of send.mock.calls) for (const b of given) expect((data as Buffer).buffer).not.toBe(b.buffer);
  } finally {
    send.mockRestore();
    sock.close();
    server.close();
  }
});

test('queued datagrams are charged their bytes and a cost each: empty ones are not free, before the connect or after', async () => {
  const server = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
  let connected = false;
  const sock = osUdpEgress(4, '127.0.0.1', server.address().port, { onMessage: () => undefined, onError: () => undefined, onFailed: () => undefined });
  const size = jest.spyOn(Socket.prototype, 'getSendQueueSize');
  try {
    sock.send(Buffer.alloc(0));
    sock.send(Buffer.alloc(0));
    sock.send(Buffer.from('abc'));
    expect(sock.queuedBytes?.()).toBe(3 + 3 * QUEUED_DATAGRAM_COST);
    for (let i = 0; i < 50 && !connected; i++) {
      await new Promise((r) => setTimeout(r, 10));
      connected = sock.queuedBytes?.() === 0;
    }
    expect(connected).toBe(true);
    // What libuv reports when the kernel returned EAGAIN: five empty datagrams waiting.
    size.mockReturnValue(0);
    const count = jest.spyOn(Socket.prototype, 'getSendQueueCount').mockReturnValue(5);
    expect(sock.queuedBytes?.()).toBe(5 * QUEUED_DATAGRAM_COST);
    count.mockRestore();
  } finally {
    size.mockRestore();
    sock.close();
    server.close();
  }
});
