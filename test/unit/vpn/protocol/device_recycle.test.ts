// Transport messages are opened into the device's packet arena: kept intact
// until the owner says every opened packet was let go (recyclePackets), then
// later messages are opened into the same memory, as the concentrator does
// at the start of each receive batch.
import { establishedPair, ipv4, payloadOf } from './fake_net';

function setup() {
  const { net, client, server } = establishedPair();
  const raw: Buffer[] = [];
  server.deliver = (_peer, packet) => raw.push(packet);
  const send = (text: string): Buffer => {
    client.device.send(client.peerOf(server), ipv4(text), net.now);
    net.flush();
    return raw[raw.length - 1];
  };
  return { server, send };
}

test('without recyclePackets(): every opened packet keeps its own bytes, however many follow', () => {
  const { send } = setup();
  const first = send('first packet');
  for (let i = 0; i < 200; i++) send(`packet ${i} `.padEnd(1300, 'x'));
  expect(payloadOf(first)).toBe('first packet');
});

test('after recyclePackets(): the next message is opened over the earlier ones, and opens correctly', () => {
  const { server, send } = setup();
  const first = send('first packet');
  const second = send('second packet');
  expect(second.buffer).toBe(first.buffer);
  expect(second.byteOffset).toBeGreaterThan(first.byteOffset);
  server.device.recyclePackets();
  const third = send('third packet');
  expect(third.buffer).toBe(first.buffer);
  // From the arena's first byte again (the handshake's 'hello' was opened there).
  expect(third.byteOffset).toBe(0);
  expect(payloadOf(third)).toBe('third packet');
});
