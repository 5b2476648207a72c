import { addressKeyOf, formatAddress, IpAddress, IpCidr } from '../../../../netstack/wire';
import { hex, V4_ECHO_REQUEST, V6_ECHO_REQUEST } from './fixtures';

describe('IpAddress', () => {
  test('parses dotted IPv4 into 4 bytes and prints it back', () => {
    const a = IpAddress.parse('10.8.0.1');
    expect(a.family).toBe(4);
    expect(a.bytes).toEqual(hex('0a080001'));
    expect(a.toString()).toBe('10.8.0.1');
  });

  test.each([
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'], // §4.3 lowercase, §4.1 no leading zeros
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3 first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2 a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3 the longest run
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // §5 IPv4-mapped keeps dotted form
  ])('prints %s in RFC 5952 canonical form %s', (text, canonical) => {
    const a = IpAddress.parse(text);
    expect(a.family).toBe(6);
    expect(a.toString()).toBe(canonical);
  });

  test.each(['', '1.2.3', '256.1.1.1', '01.2.3.4', '10.0.0.1/24', 'fe80::1%eth0', '1::2::3', ' ::1', 'host.example'])(
    'refuses config text %j with an error naming it',
    (text) => {
      expect(() => IpAddress.parse(text)).toThrow(`invalid IP address "${text}"`);
      expect(IpAddress.tryParse(text)).toBeNull();
    },
  );

  test('fromBytes copies, so a reused packet buffer cannot change the address', () => {
    const pkt = Buffer.from(hex('c0a80001'));
    const a = IpAddress.fromBytes(pkt);
    pkt[0] = 0;
    expect(a.toString()).toBe('192.168.0.1');
  });

  test('fromBytes rejects lengths other than 4 and 16', () => {
    expect(() => IpAddress.fromBytes(Buffer.alloc(5))).toThrow(RangeError);
  });

  test('equal addresses have equal keys and compare equal', () => {
    expect(IpAddress.parse('fd00::1').key).toBe(IpAddress.parse('fd00:0::0:1').key);
    expect(IpAddress.parse('10.0.0.1').equals(IpAddress.parse('10.0.0.1'))).toBe(true);
    expect(IpAddress.parse('10.0.0.1').equals(IpAddress.parse('10.0.0.2'))).toBe(false);
  });

  test('an IPv4 address and its IPv4-mapped IPv6 form have different keys', () => {
    expect(IpAddress.parse('1.2.3.4').key).not.toBe(IpAddress.parse('::ffff:1.2.3.4').key);
  });

  test('addressKeyOf on packet bytes equals IpAddress.key (IPv4 and IPv6)', () => {
    expect(addressKeyOf(V4_ECHO_REQUEST, 12, 4)).toBe(IpAddress.parse('127.0.0.1').key);
    expect(addressKeyOf(V6_ECHO_REQUEST, 8, 6)).toBe(IpAddress.parse('::1').key);
  });

  test('formatAddress prints an address straight from packet bytes, the same text as IpAddress', () => {
    expect(formatAddress(V4_ECHO_REQUEST, 12, 4)).toBe('127.0.0.1');
    expect(formatAddress(V6_ECHO_REQUEST, 8, 6)).toBe('::1');
  });

  test('toBigInt and fromBigInt convert both ways, for pool arithmetic', () => {
    expect(IpAddress.parse('10.77.0.2').toBigInt()).toBe(0x0a4d0002n);
    expect(IpAddress.fromBigInt(4, 0x0a4d0002n).toString()).toBe('10.77.0.2');
    expect(IpAddress.fromBigInt(6, IpAddress.parse('fd77::1').toBigInt() + 1n).toString()).toBe('fd77::2');
  });

  test('fromBigInt refuses a value that is not an address of the family', () => {
    expect(() => IpAddress.fromBigInt(4, 1n << 32n)).toThrow(RangeError);
    expect(() => IpAddress.fromBigInt(6, -1n)).toThrow(RangeError);
  });

  test('keys work as Map keys', () => {
    const m = new Map([[IpAddress.parse('::1').key, 'lo6']]);
    expect(m.get(addressKeyOf(V6_ECHO_REQUEST, 24, 6))).toBe('lo6');
  });
});

describe('IpCidr', () => {
  test('contains addresses inside the prefix only', () => {
    const c = IpCidr.parse('10.0.0.0/24');
    expect(c.contains(IpAddress.parse('10.0.0.255'))).toBe(true);
    expect(c.contains(IpAddress.parse('10.0.1.0'))).toBe(false);
  });

  test('compares a prefix that is not a byte boundary bit by bit', () => {
    const c = IpCidr.parse('fd00:abcd::/29');
    expect(c.contains(IpAddress.parse('fd00:abcf::1'))).toBe(true);
    expect(c.contains(IpAddress.parse('fd00:abc0::1'))).toBe(false);
  });

  test('never matches the other family (an IPv4-mapped address is not in an IPv4 prefix)', () => {
    expect(IpCidr.parse('0.0.0.0/0').contains(IpAddress.parse('::ffff:1.2.3.4'))).toBe(false);
  });

  test('/0 contains every address of its family', () => {
    expect(IpCidr.parse('::/0').contains(IpAddress.parse('2001:db8::1'))).toBe(true);
  });

  test('containsBytes checks straight on packet bytes', () => {
    expect(IpCidr.parse('127.0.0.0/8').containsBytes(V4_ECHO_REQUEST, 12, 4)).toBe(true);
    expect(IpCidr.parse('10.0.0.0/8').containsBytes(V4_ECHO_REQUEST, 12, 4)).toBe(false);
  });

  test('keeps the address as written and derives the network', () => {
    const c = IpCidr.parse('10.8.0.1/24');
    expect(c.toString()).toBe('10.8.0.1/24');
    expect(c.network.toString()).toBe('10.8.0.0');
  });

  test('lastAddress sets every host bit: the directed broadcast of an IPv4 subnet', () => {
    expect(IpCidr.parse('10.8.0.1/24').lastAddress.toString()).toBe('10.8.0.255');
    expect(IpCidr.parse('192.168.5.9/21').lastAddress.toString()).toBe('192.168.7.255');
    expect(IpCidr.parse('10.0.0.1/32').lastAddress.toString()).toBe('10.0.0.1');
    expect(IpCidr.parse('fd00::1/64').lastAddress.toString()).toBe('fd00::ffff:ffff:ffff:ffff');
  });

  test('a bare address is a host route', () => {
    expect(IpCidr.parse('fd00::1').prefixLength).toBe(128);
    expect(IpCidr.parse('10.0.0.1').prefixLength).toBe(32);
  });

  test.each(['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/8x', 'fd00::/129', 'nope/8'])(
    'refuses %s',
    (text) => {
      expect(() => IpCidr.parse(text)).toThrow();
    },
  );
});
