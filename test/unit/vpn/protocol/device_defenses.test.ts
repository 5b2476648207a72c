import {
  MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_TRANSPORT, REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES, REKEY_TIMEOUT,
} from '../../../../vpn/protocol/constants';
import { HANDSHAKE_BURST } from '../../../../vpn/protocol/ratelimit';
import { FakeNet } from './fake_net';

function pair(serverLoadThreshold?: number) {
  const net = new FakeNet();
  const client = net.node('client');
  const server = net.node('server', serverLoadThreshold);
  net.link(client, server);
  return { net, client, server };
}

function established() {
  const p = pair();
  p.client.send(p.server, 'hello');
  p.net.flush();
  return p;
}

describe('cookies under load (§5.3, §5.4.7)', () => {
  test('under load, an initiation without mac2 gets a cookie reply instead of a response', () => {
    const { net, client, server } = pair();
    server.device.forceUnderLoad(true);
    client.send(server, 'x');
    net.flush(1);
    expect(net.inFlight.map((d) => d.data[0])).toEqual([MESSAGE_COOKIE_REPLY]);
    expect(server.device.counters.bad_mac2_cookie_sent).toBe(1);
    expect(server.peerOf(client).next).toBeNull(); // no DH work, no state
  });

  test('the initiator stores the cookie and its retransmission carries mac2 and succeeds', () => {
    const { net, client, server } = pair();
    server.device.forceUnderLoad(true);
    client.send(server, 'queued');
    net.flush();
    expect(client.device.counters.cookie_reply_received).toBe(1);
    expect(server.texts()).toEqual([]);
    net.advance(REKEY_TIMEOUT + 400);
    expect(server.texts()).toEqual(['queued']);
    expect(server.device.counters.bad_mac2_cookie_sent).toBe(1);
  });

  test('a cookie is bound to the source address: the same initiator from another port gets a new cookie reply', () => {
    const { net, client, server } = pair();
    server.device.forceUnderLoad(true);
    client.send(server, 'x');
    net.flush(); // cookie for client's current address stored
    client.endpoint = { address: client.endpoint.address, port: client.endpoint.port + 1 };
    net.advance(REKEY_TIMEOUT + 400); // retransmission with mac2 from the new port
    expect(server.device.counters.bad_mac2_cookie_sent).toBe(2);
    expect(server.texts()).toEqual([]);
  });

  test('under load, initiations with a valid cookie from one address beyond its rate are dropped before any Diffie-Hellman', () => {
    const { net, client, server } = pair();
    server.device.forceUnderLoad(true);
    client.send(server, 'queued');
    net.flush();
    net.advance(REKEY_TIMEOUT + 400);
    expect(server.texts()).toEqual(['queued']);
    // The initiation that carried mac2, replayed from the same address (its timestamp makes every copy a replay).
    const withCookie = net.log.filter((d) => d.data[0] === MESSAGE_INITIATION).at(-1)!;
    net.advance(1000); // the source's bucket is full again
    const before = { ...server.device.counters };
    for (let i = 0; i < 20; i++) net.deliver(withCookie);
    const limited = (server.device.counters.handshake_rate_limited ?? 0) - (before.handshake_rate_limited ?? 0);
    const replays = (server.device.counters.stale_timestamp ?? 0) - (before.stale_timestamp ?? 0);
    // A burst reached the handshake (and failed there as replays), the rest went no further than the limiter.
    expect(replays).toBe(HANDSHAKE_BURST);
    expect(limited).toBe(20 - HANDSHAKE_BURST);
  });

  test('a cookie reply that does not answer our last message (wrong AD) is rejected', () => {
    const { net, client, server } = pair();
    server.device.forceUnderLoad(true);
    client.send(server, 'x');
    net.flush(1);
    const reply = net.inFlight.shift()!;
    reply.data[40] ^= 1;
    net.deliver(reply);
    expect(client.device.counters.bad_cookie_reply).toBe(1);
  });

  test('load is detected from the handshake rate (configurable threshold) and ends after a quiet second', () => {
    const { net, client, server } = pair(2);
    const init = () => {
      client.peerOf(server).lastSentHandshakeAt = -Infinity; // bypass the initiator's own rate limit
      client.device.initiateHandshake(client.peerOf(server), net.now);
      net.flush(1);
      return net.inFlight.splice(0).map((d) => d.data[0]);
    };
    expect(init()).not.toContain(MESSAGE_COOKIE_REPLY);
    net.now += 100;
    expect(init()).not.toContain(MESSAGE_COOKIE_REPLY);
    net.now += 100;
    expect(init()).toEqual([MESSAGE_COOKIE_REPLY]); // third in one second
    net.now += 2100;
    expect(init()).not.toContain(MESSAGE_COOKIE_REPLY);
  });
});

describe('transport replay and counters (§5.4.6)', () => {
  test('a replayed data packet is rejected and not delivered twice', () => {
    const { net, server } = established();
    const data = net.log.find((d) => d.data[0] === MESSAGE_TRANSPORT && d.data.length > 32)!;
    server.device.receive(Buffer.from(data.data), data.from, net.now);
    expect(server.device.counters.replay).toBe(1);
    expect(server.texts()).toEqual(['hello']);
  });

  test('counters older than the replay window are rejected', () => {
    const { net, client, server } = established();
    const cp = client.peerOf(server);
    client.send(server, 'old');
    const old = net.inFlight.shift()!;
    cp.current!.setSendCounter(cp.current!.sendCounter + 10_000n);
    client.send(server, 'new');
    net.flush();
    net.deliver(old);
    expect(server.texts()).toEqual(['hello', 'new']);
    expect(server.device.counters.replay).toBe(1);
  });

  test('reordered packets within the window are all delivered', () => {
    const { net, client, server } = established();
    client.send(server, 'a');
    client.send(server, 'b');
    client.send(server, 'c');
    net.inFlight.reverse();
    net.flush();
    expect(server.texts()).toEqual(['hello', 'c', 'b', 'a']);
  });

  test('a forged or corrupted data packet fails authentication and does not burn its counter', () => {
    const { net, client, server } = established();
    client.send(server, 'x');
    const d = net.inFlight.shift()!;
    const forged = Buffer.from(d.data);
    forged[forged.length - 1] ^= 1;
    server.device.receive(forged, d.from, net.now);
    expect(server.device.counters.decrypt_failed).toBe(1);
    net.deliver(d);
    expect(server.texts()).toEqual(['hello', 'x']);
  });

  test('at REJECT_AFTER_MESSAGES the keypair refuses to send and a new handshake starts', () => {
    const { net, client, server } = established();
    const cp = client.peerOf(server);
    const old = cp.current!;
    old.setSendCounter(REJECT_AFTER_MESSAGES - 1n);
    net.advance(REKEY_TIMEOUT, 1000); // let the initiation rate limit pass
    client.send(server, 'last');
    client.send(server, 'after');
    expect(net.inFlight.map((d) => d.data[0])).toEqual([MESSAGE_TRANSPORT, MESSAGE_INITIATION]);
    net.flush();
    expect(server.texts()).toEqual(['hello', 'last', 'after']);
    expect(cp.current).not.toBe(old);
  });

  test('past REKEY_AFTER_MESSAGES even the responder starts a new handshake, and still sends meanwhile', () => {
    const { net, client, server } = established();
    net.advance(REKEY_TIMEOUT, 1000);
    const sp = server.peerOf(client);
    sp.current!.setSendCounter(REKEY_AFTER_MESSAGES + 1n);
    server.send(client, 'big counter');
    expect(net.inFlight.map((d) => d.data[0])).toEqual([MESSAGE_TRANSPORT, MESSAGE_INITIATION]);
    net.flush();
    expect(client.texts()).toEqual(['big counter']);
    expect(sp.current!.sendCounter).toBeLessThan(10n);
  });

  test('a counter at REJECT_AFTER_MESSAGES is refused by the receiver', () => {
    const { net, client, server } = established();
    const cp = client.peerOf(server);
    cp.current!.setSendCounter(REJECT_AFTER_MESSAGES);
    // Bypass the sender-side check to put such a packet on the wire.
    const { sealTransport } = jest.requireActual('../../../../vpn/protocol/transport');
    const msg: Buffer = sealTransport(cp.current!, Buffer.alloc(0));
    server.device.receive(msg, client.endpoint, net.now);
    expect(server.device.counters.expired_keypair).toBe(1);
  });
});

describe('roaming (§2.1)', () => {
  test('an authenticated packet from a new address updates the peer endpoint', () => {
    const { net, client, server } = established();
    const sp = server.peerOf(client);
    const oldEp = { ...sp.endpoint! };
    client.endpoint = { address: '198.51.100.7', port: 40000 };
    client.send(server, 'moved');
    net.flush();
    expect(sp.endpoint).toEqual({ address: '198.51.100.7', port: 40000 });
    expect(server.events).toContainEqual({ type: 'endpoint_changed', peer: sp, from: oldEp, to: sp.endpoint });
    server.send(client, 'reply');
    expect(net.inFlight[0].to).toEqual({ address: '198.51.100.7', port: 40000 });
  });

  test('an unauthenticated packet from a new address does not move the endpoint', () => {
    const { net, client, server } = established();
    client.send(server, 'x');
    const d = net.inFlight.shift()!;
    const forged = Buffer.from(d.data);
    forged[20] ^= 1;
    server.device.receive(forged, { address: '203.0.113.66', port: 1 }, net.now);
    expect(server.peerOf(client).endpoint).toEqual(client.endpoint);
  });
});

describe('hostile datagrams never throw out of receive()', () => {
  const cases: Array<[string, string, Buffer]> = [
    ['empty', 'bad_length', Buffer.alloc(0)],
    ['3 bytes', 'bad_length', Buffer.from([1, 0, 0])],
    ['unknown type', 'unknown_message_type', Buffer.from([9, 0, 0, 0, 1, 2, 3, 4])],
    ['nonzero reserved bytes', 'unknown_message_type', Buffer.concat([Buffer.from([1, 1, 0, 0]), Buffer.alloc(144)])],
    ['short initiation', 'bad_length', Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(100)])],
    ['long response', 'bad_length', Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.alloc(100)])],
    ['short cookie reply', 'bad_length', Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.alloc(10)])],
    ['short transport', 'bad_length', Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.alloc(20)])],
    ['transport to unknown index', 'unknown_receiver_index', Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.alloc(60)])],
    ['cookie reply to unknown index', 'unknown_receiver_index', Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.alloc(60)])],
    ['initiation with zero mac1', 'bad_mac1', Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(144)])],
  ];
  test.each(cases)('%s is counted as %s', (_name, reason, datagram) => {
    const { net, server } = established();
    expect(() => server.device.receive(datagram, { address: '203.0.113.9', port: 9 }, net.now)).not.toThrow();
    expect(server.device.counters[reason]).toBe(1);
  });

  test('random garbage and bit-flipped real messages: no exception, no delivery, every drop counted', () => {
    const { net, client, server } = established();
    const real = net.log.map((d) => d.data);
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const before = server.texts().length;
    let sent = 0;
    for (let i = 0; i < 500; i++) {
      const base = Buffer.from(real[rnd(real.length)]);
      if (i % 2 === 0) base[rnd(base.length)] ^= 1 << rnd(8);
      else for (let j = 0; j < base.length; j++) base[j] = rnd(256);
      server.device.receive(base, client.endpoint, net.now);
      sent++;
    }
    const drops = Object.entries(server.device.counters)
      .filter(([k]) => !['handshake_complete', 'handshake_response_sent', 'keepalive_received', 'handshake_initiation_sent', 'keepalive_sent', 'endpoint_changed', 'bad_mac2_cookie_sent'].includes(k))
      .reduce((s, [, v]) => s + v, 0);
    expect(server.device.counters.internal_error ?? 0).toBe(0);
    expect(server.texts().length).toBe(before);
    expect(drops).toBe(sent);
  });
});
