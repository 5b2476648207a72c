import { Icmpv4Message, Icmpv4Repr, Icmpv4View, Ipv4View, isWireError } from '../../../../netstack/wire';
import { hex, parsedOk, reasonOf, V4_DNS_QUERY, V4_ECHO_REPLY, V4_ECHO_REQUEST, V4_PORT_UNREACHABLE } from './fixtures';

const view = (buf: Buffer): Icmpv4View => parsedOk(Icmpv4View.parse(buf));
const repr = (buf: Buffer): Icmpv4Message => parsedOk(Icmpv4Repr.parse(view(buf))).message;
function emitted(m: Icmpv4Message): Buffer {
  const r = new Icmpv4Repr(m);
  const out = Buffer.alloc(r.bufferLen());
  r.emit(Icmpv4View.unchecked(out));
  return out;
}

const REQUEST = V4_ECHO_REQUEST.subarray(20);
const REPLY = V4_ECHO_REPLY.subarray(20);
const UNREACHABLE = V4_PORT_UNREACHABLE.subarray(20);

describe('ICMPv4 echo (captured ping)', () => {
  test('reads type, code, checksum, identifier, sequence and data', () => {
    const v = view(REQUEST);
    expect([v.type, v.code, v.checksum, v.identifier, v.sequence]).toEqual([8, 0, 0x664a, 0x2486, 1]);
    expect(v.data).toEqual(REQUEST.subarray(8));
    expect(v.verifyChecksum()).toBe(true);
  });

  test('request parses to a Repr and emits byte for byte', () => {
    const r = repr(REQUEST);
    expect(r).toEqual({ kind: 'echo_request', identifier: 0x2486, sequence: 1, data: REQUEST.subarray(8) });
    expect(emitted(r)).toEqual(REQUEST);
  });

  test('the reply the kernel sent is what a Repr built from the request emits (RFC 792 echo)', () => {
    const req = repr(REQUEST);
    if (req.kind !== 'echo_request') throw new Error(req.kind);
    expect(emitted({ ...req, kind: 'echo_reply' })).toEqual(REPLY);
  });

  test('a corrupted message is refused: bad_checksum', () => {
    const b = Buffer.from(REQUEST);
    b[10] ^= 0xff;
    expect(reasonOf(Icmpv4Repr.parse(view(b)))).toBe('bad_checksum');
  });

  test('an echo with a non-zero code is kept whole as "other"', () => {
    const b = Buffer.from(REQUEST);
    b[1] = 1;
    view(b).fillChecksum();
    const r = repr(b);
    expect(r.kind).toBe('other');
    expect(emitted(r)).toEqual(b);
  });

  test('fewer than 8 bytes: truncated', () => {
    expect(reasonOf(Icmpv4View.parse(REQUEST.subarray(0, 7)))).toBe('truncated');
  });
});

describe('ICMPv4 errors', () => {
  test('captured Port Unreachable quotes the whole DNS query datagram', () => {
    const r = repr(UNREACHABLE);
    expect(r).toMatchObject({ kind: 'dst_unreachable', code: 3, nextHopMtu: 0 });
    if (r.kind !== 'dst_unreachable') throw new Error(r.kind);
    expect(r.quote).toEqual(V4_DNS_QUERY);
    const inner = Ipv4View.parse(r.quote);
    expect(isWireError(inner) ? inner.reason : inner.protocol).toBe(17);
  });

  test('Port Unreachable Repr emits the captured bytes', () => {
    expect(emitted(repr(UNREACHABLE))).toEqual(UNREACHABLE);
  });

  test('Fragmentation Needed carries the next-hop MTU (RFC 1191 §4)', () => {
    const r: Icmpv4Message = { kind: 'dst_unreachable', code: 4, nextHopMtu: 1420, quote: V4_DNS_QUERY.subarray(0, 28) };
    const out = emitted(r);
    expect([out[0], out[1]]).toEqual([3, 4]);
    expect(view(out).nextHopMtu).toBe(1420);
    expect(repr(out)).toEqual(r);
  });

  test('Time Exceeded round-trips', () => {
    const r: Icmpv4Message = { kind: 'time_exceeded', code: 0, quote: V4_DNS_QUERY.subarray(0, 28) };
    const out = emitted(r);
    expect(out[0]).toBe(11);
    expect(repr(out)).toEqual(r);
  });

  test('an unknown type (timestamp request) round-trips as "other" with its rest-of-header', () => {
    const r: Icmpv4Message = { kind: 'other', type: 13, code: 0, rest: 0x12340001, data: hex('000000000000000000000000') };
    expect(repr(emitted(r))).toEqual(r);
  });
});
