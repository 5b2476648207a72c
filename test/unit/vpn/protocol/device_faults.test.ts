// Issue 8: a programming error in the WireGuard core must not be swallowed.
// Bad input is a counted drop; an exception out of the protocol code is a
// bug that leaves keys, indices and timers in doubt, so the device throws
// WireGuardCoreError (the concentrator then exits for a supervisor to
// restart it). Failures in the layers the device delivers to never reach it:
// the stack contains them.
import { EgressGuard, type UdpEgressFactory } from '../../../../netstack';
import { IpAddress, IpCidr, buildUdpPacket } from '../../../../netstack/wire';
import { KEEPALIVE_TIMEOUT, WireGuardCoreError } from '../../../../vpn/protocol';
import { FakeNet, establishedPair } from './fake_net';
import { CookieChecker } from '../../../../vpn/protocol/cookie';
import { stackWithSinks } from '../../netstack/stack_harness';

const established = () => establishedPair();

function caught(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

afterEach(() => jest.restoreAllMocks());

test('a fault injected into handshake processing surfaces as WireGuardCoreError from receive(), with its cause, counted', () => {
  const net = new FakeNet();
  const client = net.node('client');
  const server = net.node('server');
  net.link(client, server);
  jest.spyOn(CookieChecker.prototype, 'checkMac1').mockImplementation(() => {
    throw new Error('injected: mac1 bug');
  });
  client.send(server, 'hello');
  const err = caught(() => net.flush());
  expect(err).toBeInstanceOf(WireGuardCoreError);
  expect(err).toMatchObject({ operation: 'receive', message: 'WireGuard core failed in receive: injected: mac1 bug' });
  expect(((err as WireGuardCoreError).fault as Error).message).toBe('injected: mac1 bug');
  expect(server.device.counters.internal_error).toBe(1);
});

test('a fault in the send path surfaces as WireGuardCoreError from send()', () => {
  const { client, server } = established();
  const kp = server.peerOf(client).current;
  if (kp === null) throw new Error('no session');
  jest.spyOn(kp, 'isExpired').mockImplementation(() => {
    throw new Error('injected: keypair bug');
  });
  expect(caught(() => server.send(client, 'reply'))).toMatchObject({ name: 'WireGuardCoreError', operation: 'send' });
});

test('a fault in the timers surfaces as WireGuardCoreError from tick()', () => {
  const { net, client, server } = established();
  jest.spyOn(server.peerOf(client), 'hasSession').mockImplementation(() => {
    throw new Error('injected: timer bug');
  });
  // tick() runs the peers whose deadline came: the keepalive answering the last packet is one.
  expect(caught(() => server.device.tick(net.now + KEEPALIVE_TIMEOUT))).toMatchObject({ name: 'WireGuardCoreError', operation: 'tick' });
});

test('bad input is never a core fault: garbage is a counted drop and receive() does not throw', () => {
  const { net, server } = established();
  expect(() => server.device.receive(Buffer.alloc(200, 7), { address: '203.0.113.9', port: 9 }, net.now)).not.toThrow();
  expect(server.device.counters.internal_error ?? 0).toBe(0);
});

test('a failure in the layer the device delivers to (the stack) is contained there and never reaches the device', () => {
  const { net, client, server } = established();
  const failingEgress: UdpEgressFactory = () => {
    throw new Error('injected: egress bug');
  };
  const stack = stackWithSinks({
    localAddresses: [IpAddress.parse('10.0.0.1')],
    guard: new EgressGuard({ tunnelAddresses: [IpAddress.parse('10.0.0.1')], tunnelPools: [IpCidr.parse('10.0.0.0/24')], listener: null }),
    toClient: () => undefined,
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 4 },
    udpEgress: failingEgress,
    tcp: { mtu: 1420, maxFlowsPerUser: 4, maxSynPerSecond: 10, idleTimeoutMs: 60_000 },
    fds: { hasRoom: () => true },
  });
  server.deliver = (_peer, packet) => stack.receive(packet, { id: 'client', user: 'client' }, net.now);
  const datagram = buildUdpPacket(IpAddress.parse('10.0.0.2'), 5000, IpAddress.parse('192.0.2.53'), 53, Buffer.from('query'));
  client.device.send(client.peerOf(server), datagram, net.now);
  expect(() => net.flush()).not.toThrow();
  expect(stack.counters.udp_flow_error).toBe(1);
  expect(server.device.counters.internal_error ?? 0).toBe(0);
});
