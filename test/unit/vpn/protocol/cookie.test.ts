import { COOKIE_REFRESH_TIME, MESSAGE_INITIATION_SIZE } from '../../../../vpn/protocol/constants';
import { CookieChecker, CookieGenerator } from '../../../../vpn/protocol/cookie';
import { defaultRandom, PrivateKey } from '../../../../vpn/protocol/crypto';
import { endpointBytes } from '../../../../vpn/protocol/endpoint';
import { INIT_SENDER } from '../../../../vpn/protocol/noise';

const responderKey = PrivateKey.generate().publicKey();
const from = { address: '192.0.2.10', port: 40000 };

function message(): Buffer {
  const m = Buffer.alloc(MESSAGE_INITIATION_SIZE, 0x11);
  m.writeUInt32LE(1, 0);
  m.writeUInt32LE(0xabcdef, INIT_SENDER);
  return m;
}

describe('MAC1 / MAC2 and cookie replies (§5.4.4, §5.4.7)', () => {
  test('mac1 made with the responder public key verifies; one flipped byte does not', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const msg = message();
    new CookieGenerator(responderKey).addMacs(msg, 0);
    expect(checker.checkMac1(msg)).toBe(true);
    msg[10] ^= 1;
    expect(checker.checkMac1(msg)).toBe(false);
  });

  test('mac1 keyed for another responder is rejected (the sender must know our public key)', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const msg = message();
    new CookieGenerator(PrivateKey.generate().publicKey()).addMacs(msg, 0);
    expect(checker.checkMac1(msg)).toBe(false);
  });

  test('mac2 is zero until a cookie is received, then valid for that source address', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const gen = new CookieGenerator(responderKey);
    const msg = message();
    gen.addMacs(msg, 0);
    expect(msg.subarray(132).equals(Buffer.alloc(16))).toBe(true);
    expect(checker.checkMac2(msg, from, 0)).toBe(false);
    expect(gen.consumeReply(checker.createReply(msg, INIT_SENDER, from, 0), 0)).toBe(true);
    const resend = message();
    gen.addMacs(resend, 1000);
    expect(checker.checkMac2(resend, from, 1000)).toBe(true);
    expect(checker.checkMac2(resend, { ...from, port: 40001 }, 1000)).toBe(false);
    expect(checker.checkMac2(resend, { ...from, address: '192.0.2.11' }, 1000)).toBe(false);
  });

  test('the cookie reply is addressed to the sender index of the message it answers', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const msg = message();
    new CookieGenerator(responderKey).addMacs(msg, 0);
    const reply = checker.createReply(msg, INIT_SENDER, from, 0);
    expect(reply.length).toBe(64);
    expect(reply.readUInt32LE(0)).toBe(3);
    expect(reply.readUInt32LE(4)).toBe(0xabcdef);
  });

  test('the responder secret rotates every COOKIE_REFRESH_TIME, invalidating older cookies', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const gen = new CookieGenerator(responderKey);
    const msg = message();
    gen.addMacs(msg, 0);
    gen.consumeReply(checker.createReply(msg, INIT_SENDER, from, 0), 0);
    const resend = message();
    gen.addMacs(resend, 1000);
    expect(checker.checkMac2(resend, from, 1000)).toBe(true);
    expect(checker.checkMac2(resend, from, COOKIE_REFRESH_TIME + 1)).toBe(false);
  });

  test('the initiator stops using a cookie older than COOKIE_REFRESH_TIME', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const gen = new CookieGenerator(responderKey);
    const msg = message();
    gen.addMacs(msg, 0);
    gen.consumeReply(checker.createReply(msg, INIT_SENDER, from, 0), 0);
    expect(gen.hasFreshCookie(COOKIE_REFRESH_TIME - 1)).toBe(true);
    const late = message();
    gen.addMacs(late, COOKIE_REFRESH_TIME);
    expect(late.subarray(132).equals(Buffer.alloc(16))).toBe(true);
  });

  test('an unsolicited cookie reply (no message sent yet) is refused', () => {
    const checker = new CookieChecker(responderKey, defaultRandom);
    const msg = message();
    new CookieGenerator(responderKey).addMacs(msg, 0);
    const reply = checker.createReply(msg, INIT_SENDER, from, 0);
    expect(new CookieGenerator(responderKey).consumeReply(reply, 0)).toBe(false);
  });
});

describe('cookie address binding bytes (A_m\')', () => {
  test('IPv4 is 4 address bytes then the port', () => {
    expect(endpointBytes({ address: '10.1.2.3', port: 0x1234 }).toString('hex')).toBe('0a0102033412');
  });

  test('equivalent IPv6 spellings bind to the same 16 bytes', () => {
    const a = endpointBytes({ address: '::1', port: 1 });
    expect(a.length).toBe(18);
    expect(endpointBytes({ address: '0:0:0:0:0:0:0:1', port: 1 }).equals(a)).toBe(true);
    expect(endpointBytes({ address: '2001:db8::1:0', port: 5 }).toString('hex')).toBe('20010db8000000000000000000010000' + '0500');
    expect(endpointBytes({ address: '::ffff:192.0.2.1', port: 0 }).toString('hex')).toBe('00000000000000000000ffffc0000201' + '0000');
    expect(endpointBytes({ address: 'fe80::1%eth0', port: 0 }).equals(endpointBytes({ address: 'fe80::1', port: 0 }))).toBe(true);
  });
});
