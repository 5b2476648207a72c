// UDP egress sockets: a destination the OS cannot connect to (a scoped
// multicast address such as mDNS's ff02::fb, which browsers send to) is an
// error for that flow, never an exception out of the event loop.
import { osUdpEgress } from '../../../../netstack';

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
