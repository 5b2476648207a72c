import { IpAddress, Ipv4Repr, Ipv4View, isWireError } from '../../../../netstack/wire';
import { hex, parsedOk, reasonOf, V4_DNS_QUERY, V4_ECHO_REPLY, V4_ECHO_REQUEST, WIKIPEDIA_IPV4_HEADER } from './fixtures';

const view = (buf: Buffer): Ipv4View => parsedOk(Ipv4View.parse(buf));

describe('Ipv4View on a captured ping', () => {
  const v = view(V4_ECHO_REQUEST);

  test('reads every fixed field', () => {
    expect(v.version).toBe(4);
    expect(v.ihl).toBe(5);
    expect(v.headerLen).toBe(20);
    expect(v.dscp).toBe(0);
    expect(v.ecn).toBe(0);
    expect(v.totalLength).toBe(44);
    expect(v.identification).toBe(0x7e8d);
    expect(v.dontFragment).toBe(true);
    expect(v.moreFragments).toBe(false);
    expect(v.fragmentOffset).toBe(0);
    expect(v.ttl).toBe(64);
    expect(v.protocol).toBe(1);
    expect(v.checksum).toBe(0xbe41);
    expect(v.src).toEqual(hex('7f000001'));
    expect(v.dst).toEqual(hex('7f000001'));
    expect(v.srcKey).toBe(IpAddress.parse('127.0.0.1').key);
  });

  test('src, dst and payload are views into the packet, not copies', () => {
    expect(v.payload.buffer).toBe(V4_ECHO_REQUEST.buffer);
    expect(v.payload.byteOffset).toBe(V4_ECHO_REQUEST.byteOffset + 20);
    expect(v.src.buffer).toBe(V4_ECHO_REQUEST.buffer);
  });

  test('verifies the kernel-computed header checksum', () => {
    expect(v.verifyChecksum()).toBe(true);
  });

  test('reads DSCP/ECN from a captured ICMP error sent with TOS 0xc0 (CS6)', () => {
    const err = view(hex('45c0006c7edc00004001fcf27f0000017f000001' + '00'.repeat(88)));
    expect(err.dscp).toBe(48);
    expect(err.ecn).toBe(0);
  });
});

describe('Ipv4Repr', () => {
  test('parses the captured ping and emits the identical header', () => {
    const repr = Ipv4Repr.parse(view(V4_ECHO_REQUEST));
    if (isWireError(repr)) throw new Error(repr.reason);
    expect(repr.protocol).toBe(1);
    expect(repr.payloadLen).toBe(24);
    expect(repr.src.toString()).toBe('127.0.0.1');
    const out = Buffer.alloc(repr.bufferLen());
    repr.emit(Ipv4View.unchecked(out));
    expect(out).toEqual(V4_ECHO_REQUEST.subarray(0, 20));
  });

  test('a header built from a Repr round-trips field by field (reply without DF)', () => {
    const repr = new Ipv4Repr({
      src: IpAddress.parse('127.0.0.1'),
      dst: IpAddress.parse('127.0.0.1'),
      protocol: 1,
      payloadLen: 24,
      identification: 0x7e8e,
      dontFragment: false,
    });
    const out = Buffer.alloc(20);
    repr.emit(Ipv4View.unchecked(out));
    expect(out).toEqual(V4_ECHO_REPLY.subarray(0, 20));
    expect(Ipv4Repr.parse(view(Buffer.concat([out, Buffer.alloc(24)])))).toEqual(repr);
  });

  test('refuses a header whose checksum does not verify (RFC 791 §3.1)', () => {
    const bad = Buffer.from(V4_ECHO_REQUEST);
    bad[8] = 1; // TTL changed, checksum not updated
    expect(reasonOf(Ipv4Repr.parse(view(bad)))).toBe('bad_checksum');
  });

  test('refuses fragments, which it cannot represent', () => {
    const frag = Buffer.from(V4_ECHO_REQUEST);
    const v = view(frag);
    v.moreFragments = true;
    v.fillChecksum();
    expect(reasonOf(Ipv4Repr.parse(v))).toBe('fragment');
  });

  test('refuses IPv6 addresses at construction', () => {
    expect(
      () => new Ipv4Repr({ src: IpAddress.parse('::1'), dst: IpAddress.parse('::1'), protocol: 17, payloadLen: 0 }),
    ).toThrow(TypeError);
  });
});

describe('Ipv4View.parse rejections', () => {
  test('fewer than 20 bytes: truncated', () => {
    expect(reasonOf(Ipv4View.parse(V4_ECHO_REQUEST.subarray(0, 19)))).toBe('truncated');
  });

  test('version other than 4: bad_version', () => {
    const b = Buffer.from(V4_ECHO_REQUEST);
    b[0] = 0x55;
    expect(reasonOf(Ipv4View.parse(b))).toBe('bad_version');
  });

  test('IHL below 5 words: bad_header_len', () => {
    const b = Buffer.from(V4_ECHO_REQUEST);
    b[0] = 0x44;
    expect(reasonOf(Ipv4View.parse(b))).toBe('bad_header_len');
  });

  test('IHL beyond the buffer: truncated', () => {
    const b = Buffer.from(V4_ECHO_REQUEST.subarray(0, 24));
    b[0] = 0x47; // 28-byte header in 24 bytes
    expect(reasonOf(Ipv4View.parse(b))).toBe('truncated');
  });

  test('Total Length smaller than the header: bad_total_len', () => {
    const b = Buffer.from(V4_ECHO_REQUEST);
    b.writeUInt16BE(19, 2);
    expect(reasonOf(Ipv4View.parse(b))).toBe('bad_total_len');
  });

  test('Total Length beyond the buffer: bad_total_len', () => {
    expect(reasonOf(Ipv4View.parse(V4_ECHO_REQUEST.subarray(0, 43)))).toBe('bad_total_len');
  });
});

describe('Ipv4View lengths and options', () => {
  test('payload is bounded by Total Length, not by trailing padding in the buffer', () => {
    const padded = Buffer.concat([V4_ECHO_REQUEST, Buffer.alloc(10, 0xee)]);
    expect(view(padded).payload).toEqual(V4_ECHO_REQUEST.subarray(20));
  });

  test('options are skipped: the payload starts at IHL·4', () => {
    // Wikipedia header with one 4-byte option (NOP NOP NOP EOL) inserted.
    const b = Buffer.concat([WIKIPEDIA_IPV4_HEADER, hex('01010100'), Buffer.alloc(0x73 - 24, 0xab)]);
    b[0] = 0x46;
    const v = view(b);
    v.fillChecksum();
    expect(v.options).toEqual(hex('01010100'));
    expect(v.payload.length).toBe(0x73 - 24);
    expect(v.payload[0]).toBe(0xab);
    expect(v.verifyChecksum()).toBe(true);
  });

  test('isFragment is set by MF or by a non-zero offset', () => {
    const b = Buffer.from(V4_DNS_QUERY);
    const v = view(b);
    expect(v.isFragment).toBe(false);
    v.fragmentOffset = 1480;
    expect(v.fragmentOffset).toBe(1480);
    expect(v.isFragment).toBe(true);
    expect(v.moreFragments).toBe(false);
  });

  test('setters write the fields fillChecksum then covers', () => {
    const v = Ipv4View.unchecked(Buffer.from(WIKIPEDIA_IPV4_HEADER));
    v.totalLength = 20;
    v.ttl = 1;
    v.dscp = 46;
    v.ecn = 3;
    v.protocol = 6;
    v.identification = 0xbeef;
    v.dontFragment = false;
    v.fillChecksum();
    expect([v.ttl, v.dscp, v.ecn, v.protocol, v.identification, v.dontFragment]).toEqual([1, 46, 3, 6, 0xbeef, false]);
    expect(v.verifyChecksum()).toBe(true);
  });
});
