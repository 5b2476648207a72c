import {
  KEEPALIVE_TIMEOUT, MESSAGE_INITIATION, MESSAGE_TRANSPORT, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME,
  REKEY_TIMEOUT, ZERO_KEY_MATERIAL_AFTER,
} from '../../../../vpn/protocol/constants';
import { FakeNet } from './fake_net';

function established(keepalive?: number) {
  const net = new FakeNet();
  const client = net.node('client');
  const server = net.node('server');
  net.link(client, server, { keepalive });
  client.send(server, 'hello');
  net.flush();
  return { net, client, server };
}

const countType = (net: FakeNet, type: number, from?: { endpoint: object }) =>
  net.log.filter((d) => d.data[0] === type && (!from || d.from === from.endpoint)).length;

describe('key rotation (§6.2)', () => {
  test('after REKEY_AFTER_TIME the initiator rekeys on send and traffic continues on the new keypair', () => {
    const { net, client, server } = established();
    const cp = client.peerOf(server);
    const first = cp.current!;
    net.advance(REKEY_AFTER_TIME, 5000);
    // Traffic in both directions keeps the session alive meanwhile.
    client.send(server, 'trigger');
    net.flush();
    expect(cp.current).not.toBe(first);
    expect(cp.previous).toBe(first);
    client.send(server, 'after-rekey');
    net.flush();
    expect(server.texts()).toEqual(['hello', 'trigger', 'after-rekey']);
    expect(server.peerOf(client).current!.localIndex).toBe(cp.current!.remoteIndex);
  });

  test('the responder does not rekey on age: only the initiator does (avoids both sides racing)', () => {
    const { net, client, server } = established();
    net.advance(REKEY_AFTER_TIME + 1000, 5000);
    server.send(client, 'from-responder');
    expect(net.inFlight.map((d) => d.data[0])).toEqual([MESSAGE_TRANSPORT]);
  });

  test('the previous keypair still decrypts packets that were in flight during the rekey', () => {
    const { net, client, server } = established();
    net.advance(REKEY_AFTER_TIME, 5000);
    server.send(client, 'in-flight'); // encrypted with the old keypair
    const inFlight = net.inFlight.shift()!;
    client.send(server, 'trigger');
    net.flush(); // rekey completes
    expect(client.peerOf(server).previous).not.toBeNull();
    net.deliver(inFlight);
    expect(client.texts()).toEqual(['in-flight']);
  });

  test('after REJECT_AFTER_TIME without a successful rekey nothing is sent on the old keypair', () => {
    const { net, client, server } = established();
    net.filter = () => false; // the server becomes unreachable
    net.advance(REJECT_AFTER_TIME, 5000);
    net.log.length = 0;
    client.send(server, 'too-late');
    expect(net.inFlight.every((d) => d.data[0] !== MESSAGE_TRANSPORT)).toBe(true);
    expect(client.peerOf(server).hasSession(net.now)).toBe(false);
  });

  test('a keypair older than REJECT_AFTER_TIME is refused on receive too', () => {
    const { net, client, server } = established();
    server.send(client, 'late');
    const d = net.inFlight.shift()!;
    net.now += REJECT_AFTER_TIME;
    net.deliver(d);
    expect(client.device.counters.expired_keypair).toBe(1);
  });

  test('session_expired is reported once when the last usable keypair dies', () => {
    const { net, server } = established();
    net.filter = () => false;
    net.advance(REJECT_AFTER_TIME + 1000, 5000);
    expect(server.eventTypes().filter((t) => t === 'session_expired')).toHaveLength(1);
  });

  test('all key material is erased after 3 × REJECT_AFTER_TIME without a new handshake (§6.3)', () => {
    const { net, client, server } = established();
    net.filter = () => false;
    const sp = server.peerOf(client);
    const kp = sp.current!;
    net.advance(ZERO_KEY_MATERIAL_AFTER + 1000, 10_000);
    expect(sp.current).toBeNull();
    expect(sp.previous).toBeNull();
    expect(kp.sendKey.equals(Buffer.alloc(32))).toBe(true);
    expect(server.device.indexCount).toBe(0);
  });
});

describe('handshake retransmission (§6.4)', () => {
  /** A client whose initiation for one staged packet gets no answer (every datagram is lost). */
  function unanswered() {
    const net = new FakeNet();
    const client = net.node('client');
    const server = net.node('server');
    net.link(client, server);
    net.filter = () => false;
    client.send(server, 'x');
    net.flush();
    return { net, client, server };
  }

  test('an unanswered initiation is resent every REKEY_TIMEOUT plus jitter, each with a fresh ephemeral', () => {
    const { net } = unanswered();
    net.advance(REKEY_TIMEOUT - 1, 1);
    expect(countType(net, MESSAGE_INITIATION)).toBe(1);
    net.advance(400, 1); // jitter is below 334 ms
    expect(countType(net, MESSAGE_INITIATION)).toBe(2);
    const [a, b] = net.log.filter((d) => d.data[0] === MESSAGE_INITIATION);
    expect(a.data.subarray(8, 40).equals(b.data.subarray(8, 40))).toBe(false);
  });

  test('retries stop after REKEY_ATTEMPT_TIME and staged packets are discarded', () => {
    const { net, client, server } = unanswered();
    net.advance(REKEY_ATTEMPT_TIME + 30_000, 1000);
    const sent = countType(net, MESSAGE_INITIATION);
    expect(sent).toBeGreaterThanOrEqual(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT);
    expect(sent).toBeLessThanOrEqual(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT + 2);
    expect(client.peerOf(server).staged).toHaveLength(0);
    expect(client.eventTypes()).toContain('handshake_failed');
    net.advance(60_000, 5000);
    expect(countType(net, MESSAGE_INITIATION)).toBe(sent);
  });

  test('data sent with no reply for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT triggers a new handshake (§6.5)', () => {
    const { net, client, server } = established();
    net.advance(1000);
    net.filter = (d) => d.from !== server.endpoint; // server's replies are lost
    const before = countType(net, MESSAGE_INITIATION);
    client.send(server, 'anyone?');
    net.flush();
    net.advance(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - 1000, 100);
    expect(countType(net, MESSAGE_INITIATION)).toBe(before);
    net.advance(1500, 100);
    expect(countType(net, MESSAGE_INITIATION)).toBe(before + 1);
  });
});

describe('keepalives (§6.5)', () => {
  test('passive keepalive: data received and nothing sent for KEEPALIVE_TIMEOUT → one empty packet', () => {
    const { net, client, server } = established();
    const keepalivesBefore = client.device.counters.keepalive_received ?? 0;
    net.advance(KEEPALIVE_TIMEOUT + 500, 100);
    expect(client.device.counters.keepalive_received ?? 0).toBe(keepalivesBefore + 1);
    expect(server.device.counters.keepalive_sent).toBe(1);
    net.advance(KEEPALIVE_TIMEOUT * 3, 1000);
    expect(server.device.counters.keepalive_sent).toBe(1); // nothing more without new data
  });

  test('no passive keepalive when the receiver answered with data in time', () => {
    const { net, client, server } = established();
    net.advance(1000);
    server.send(client, 'reply');
    net.flush();
    net.advance(KEEPALIVE_TIMEOUT + 500, 100);
    expect(server.device.counters.keepalive_sent ?? 0).toBe(0);
  });

  test('keepalives are not delivered as packets', () => {
    const { net, client, server } = established();
    net.advance(KEEPALIVE_TIMEOUT + 500, 100);
    expect(client.delivered).toHaveLength(0);
    expect(server.delivered).toHaveLength(1);
  });

  test('persistent keepalive sends an empty packet every interval while idle', () => {
    const { net, client, server } = established(25);
    net.advance(100_000, 1000);
    const fromClient = net.log.filter((d) => d.from === client.endpoint && d.data[0] === MESSAGE_TRANSPORT && d.data.length === 32);
    expect(fromClient.length).toBeGreaterThanOrEqual(3);
    expect(fromClient.length).toBeLessThanOrEqual(4);
    expect(server.peerOf(client).hasSession(net.now)).toBe(true);
  });

  test('nextTimerAt tells the wiring when tick() is due', () => {
    const { net, server } = established();
    expect(server.device.nextTimerAt()).toBe(net.now + KEEPALIVE_TIMEOUT);
  });
});
