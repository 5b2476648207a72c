// Cryptokey routing (whitepaper §2) over packets: a peer may send only from
// the addresses leased to it, and a packet into the tunnel goes to the peer
// owning its destination.
import { AllowedIps } from '../../../vpn/allowed_ips';
import { IpAddress, buildUdpPacket } from '../../../netstack/wire';

const ALICE4 = IpAddress.parse('10.77.0.2');
const ALICE6 = IpAddress.parse('fd77::2');
const BOB4 = IpAddress.parse('10.77.0.3');
const ORIGIN4 = IpAddress.parse('192.0.2.10');
const ORIGIN6 = IpAddress.parse('2001:db8::10');

function table() {
  const t = new AllowedIps<string>();
  t.insert(ALICE4, 'alice');
  t.insert(ALICE6, 'alice');
  t.insert(BOB4, 'bob');
  return t;
}

const udp = (src: IpAddress, dst: IpAddress) => buildUdpPacket(src, 5000, dst, 53, Buffer.from('q'));

test('a packet from one of the peer\'s own addresses, IPv4 or IPv6, is allowed', () => {
  const t = table();
  expect(t.refusesSource(udp(ALICE4, ORIGIN4), 'alice')).toBeNull();
  expect(t.refusesSource(udp(ALICE6, ORIGIN6), 'alice')).toBeNull();
});

test('a packet from another peer\'s address is refused as spoofed (anti-spoofing)', () => {
  expect(table().refusesSource(udp(BOB4, ORIGIN4), 'alice')).toBe('spoofed_source');
});

test('a packet from an address no peer owns is refused as spoofed', () => {
  expect(table().refusesSource(udp(IpAddress.parse('10.77.0.99'), ORIGIN4), 'alice')).toBe('spoofed_source');
});

test('bytes that are not an IPv4 or IPv6 header are refused as a bad inner packet', () => {
  const t = table();
  expect(t.refusesSource(Buffer.from([0x45, 0, 0, 20]), 'alice')).toBe('bad_inner_packet');
  expect(t.refusesSource(Buffer.alloc(40, 0x70), 'alice')).toBe('bad_inner_packet');
  expect(t.refusesSource(Buffer.alloc(0), 'alice')).toBe('bad_inner_packet');
});

test('a packet into the tunnel goes to the owner of its destination, and nowhere without one', () => {
  const t = table();
  expect(t.destinationOwner(udp(ORIGIN4, BOB4))).toBe('bob');
  expect(t.destinationOwner(udp(ORIGIN6, ALICE6))).toBe('alice');
  expect(t.destinationOwner(udp(ORIGIN4, IpAddress.parse('10.77.0.99')))).toBeUndefined();
});

test('a removed address routes nowhere; removing it for another peer changes nothing', () => {
  const t = table();
  t.remove(BOB4, 'alice');
  expect(t.owner(BOB4)).toBe('bob');
  t.remove(BOB4, 'bob');
  expect(t.destinationOwner(udp(ORIGIN4, BOB4))).toBeUndefined();
});
