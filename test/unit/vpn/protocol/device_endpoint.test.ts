// Roaming must not become a packet loop: an authenticated packet whose source
// is the concentrator's own (or a loopback) address never becomes the peer's
// endpoint. The device asks an injected predicate; the core makes no OS call.
import type { Endpoint } from '../../../../vpn/protocol/endpoint';
import { establishedPair } from './fake_net';

const OWN = new Set(['127.0.0.1', '192.0.2.2']);

const established = () => establishedPair({ acceptEndpoint: (e: Endpoint) => !OWN.has(e.address) });

describe('endpoint updates refused by the wiring (no loop through the concentrator)', () => {
  test('a packet from a loopback source is delivered but does not move the endpoint', () => {
    const { net, client, server } = established();
    const before = { ...server.peerOf(client).endpoint! };
    const changes = server.device.counters.endpoint_changed;
    client.endpoint = { address: '127.0.0.1', port: 51820 };
    client.send(server, 'looped');
    net.flush();
    expect(server.texts()).toContain('looped');
    expect(server.peerOf(client).endpoint).toEqual(before);
    expect(server.device.counters.endpoint_refused).toBe(1);
    expect(server.device.counters.endpoint_changed).toBe(changes);
  });

  test("a packet from the concentrator's own address does not move the endpoint", () => {
    const { net, client, server } = established();
    client.endpoint = { address: '192.0.2.2', port: 40000 };
    client.send(server, 'own');
    net.flush();
    expect(server.peerOf(client).endpoint?.address).toBe('192.0.2.1');
    expect(server.device.counters.endpoint_refused).toBe(1);
  });

  test('ordinary roaming still works with the predicate in place', () => {
    const { net, client, server } = established();
    client.endpoint = { address: '198.51.100.7', port: 40000 };
    client.send(server, 'moved');
    net.flush();
    expect(server.peerOf(client).endpoint).toEqual({ address: '198.51.100.7', port: 40000 });
    expect(server.device.counters.endpoint_refused).toBeUndefined();
  });
});
