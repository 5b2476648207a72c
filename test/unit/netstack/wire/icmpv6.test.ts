import { Icmpv6Message, Icmpv6Repr, Icmpv6View, Ipv6View, isWireError, WireError } from '../../../../netstack/wire';
import { LOOPBACK6, parsedOk, V6_DNS_QUERY, V6_ECHO_REPLY, V6_ECHO_REQUEST, V6_PORT_UNREACHABLE } from './fixtures';

const view = (buf: Buffer): Icmpv6View => parsedOk(Icmpv6View.parse(buf));
const message = (v: Icmpv6View): Icmpv6Message => Icmpv6Repr.parse(v).message;
function emitted(m: Icmpv6Message): Buffer {
  const r = new Icmpv6Repr(m);
  const out = Buffer.alloc(r.bufferLen());
  r.emit(Icmpv6View.unchecked(out), LOOPBACK6, LOOPBACK6);
  return out;
}

const REQUEST = V6_ECHO_REQUEST.subarray(40);
const REPLY = V6_ECHO_REPLY.subarray(40);
const UNREACHABLE = V6_PORT_UNREACHABLE.subarray(40);

describe('ICMPv6 echo (captured ping -6)', () => {
  test('reads the fields and verifies with the pseudo-header (RFC 4443 §2.3)', () => {
    const v = view(REQUEST);
    expect([v.type, v.code, v.checksum, v.identifier, v.sequence]).toEqual([128, 0, 0x66ad, 0x2487, 1]);
    expect(v.verifyChecksum(LOOPBACK6, LOOPBACK6)).toBe(true);
  });

  test('the checksum covers the pseudo-header: other addresses fail', () => {
    const other = Buffer.from(LOOPBACK6);
    other[0] = 0xfd;
    expect(view(REQUEST).verifyChecksum(other, LOOPBACK6)).toBe(false);
  });

  test('request Repr emits byte for byte; the same Repr as a reply gives the kernel reply', () => {
    const r = message(view(REQUEST));
    expect(r).toEqual({ kind: 'echo_request', identifier: 0x2487, sequence: 1, data: REQUEST.subarray(8) });
    expect(emitted(r)).toEqual(REQUEST);
    if (r.kind !== 'echo_request') throw new Error(r.kind);
    expect(emitted({ ...r, kind: 'echo_reply' })).toEqual(REPLY);
  });

  test('without addresses emit leaves the checksum to the caller', () => {
    const r = Icmpv6Repr.parse(view(REQUEST));
    const out = Buffer.alloc(r.bufferLen());
    r.emit(Icmpv6View.unchecked(out));
    expect(view(out).checksum).toBe(0);
    view(out).fillChecksum(LOOPBACK6, LOOPBACK6);
    expect(out).toEqual(REQUEST);
  });

  test('fewer than 8 bytes: truncated', () => {
    const e = Icmpv6View.parse(REQUEST.subarray(0, 7));
    expect(e instanceof WireError && e.reason).toBe('truncated');
  });
});

describe('ICMPv6 errors', () => {
  test('captured Port Unreachable (type 1 code 4) quotes the DNS query', () => {
    const r = message(view(UNREACHABLE));
    expect(r).toMatchObject({ kind: 'dst_unreachable', code: 4 });
    if (r.kind !== 'dst_unreachable') throw new Error(r.kind);
    expect(r.quote).toEqual(V6_DNS_QUERY);
    const inner = Ipv6View.parse(r.quote);
    expect(isWireError(inner) ? inner.reason : inner.protocol).toBe(17);
    expect(emitted(r)).toEqual(UNREACHABLE);
  });

  test('Packet Too Big carries a 32-bit MTU (RFC 4443 §3.2)', () => {
    const r: Icmpv6Message = { kind: 'packet_too_big', mtu: 1280, quote: V6_DNS_QUERY.subarray(0, 48) };
    const out = emitted(r);
    expect([out[0], out[1], view(out).mtu]).toEqual([2, 0, 1280]);
    expect(view(out).verifyChecksum(LOOPBACK6, LOOPBACK6)).toBe(true);
    expect(message(view(out))).toEqual(r);
  });

  test('Parameter Problem carries the pointer (RFC 4443 §3.4)', () => {
    const r: Icmpv6Message = { kind: 'param_problem', code: 1, pointer: 40, quote: V6_DNS_QUERY.subarray(0, 48) };
    expect(message(view(emitted(r)))).toEqual(r);
  });

  test('Time Exceeded round-trips', () => {
    const r: Icmpv6Message = { kind: 'time_exceeded', code: 0, quote: V6_DNS_QUERY.subarray(0, 48) };
    expect(message(view(emitted(r)))).toEqual(r);
  });

  test('NDP and other types round-trip whole as "other"', () => {
    const r: Icmpv6Message = { kind: 'other', type: 135, code: 0, rest: 0, data: LOOPBACK6 };
    expect(message(view(emitted(r)))).toEqual(r);
  });
});
