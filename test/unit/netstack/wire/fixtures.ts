// Real packets captured on the loopback interface of a Linux 6.x host with an
// AF_PACKET socket (link-layer header stripped), while running:
//   ping -c1 -s16 127.0.0.1 ; ping -6 -c1 -s16 ::1
//   dig @127.0.0.1 -p 5353 example.com A ; dig @::1 -p 5353 example.com AAAA
//     (nothing listens on 5353, so the kernel answers Port Unreachable)
//   connect() to 127.0.0.1:9 and [::1]:9 (closed: the kernel answers RST)
// Loopback uses checksum offload: the UDP and TCP checksums of packets sent
// by a socket hold only the pseudo-header sum (CHECKSUM_PARTIAL). The full
// values given below were computed by an independent byte-wise Python
// implementation; ICMP checksums and the kernel's RST are complete on the wire.

import { WireError, isWireError } from '../../../../netstack/wire';
import { seededRandom } from '../../../../scripts/lab/prng';

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

export const V4_ECHO_REQUEST = hex(
  '4500002c 7e8d 4000 4001 be41 7f000001 7f000001' +
    '0800 664a 2486 0001 8bcd066b00000000 cff50b0000000000',
);
export const V4_ECHO_REPLY = hex(
  '4500002c 7e8e 0000 4001 fe40 7f000001 7f000001' +
    '0000 6e4a 2486 0001 8bcd066b00000000 cff50b0000000000',
);
export const V6_ECHO_REQUEST = hex(
  '60088e22 0018 3a 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '8000 66ad 2487 0001 8bcd066b00000000 533d0f0000000000',
);
export const V6_ECHO_REPLY = hex(
  '600998af 0018 3a 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '8100 65ad 2487 0001 8bcd066b00000000 533d0f0000000000',
);

/** DNS query "example.com A" with an EDNS cookie, UDP 49055 -> 5353. */
export const V4_DNS_QUERY = hex(
  '45000050 92f9 0000 4011 e9a1 7f000001 7f000001' +
    'bf9f 14e9 003c fe4f' +
    '180a01200001000000000001076578616d706c6503636f6d000001000100002904d000000000000c000a00081cf2a979f5bbb967',
);
export const V4_DNS_QUERY_FULL_UDP_CHECKSUM = 0xcaab;
export const V4_PORT_UNREACHABLE = hex(
  '45c0006c 7edc 0000 4001 fcf2 7f000001 7f000001' +
    '0303 c7a8 00000000' +
    '45000050 92f9 0000 4011 e9a1 7f000001 7f000001 bf9f 14e9 003c fe4f' +
    '180a01200001000000000001076578616d706c6503636f6d000001000100002904d000000000000c000a00081cf2a979f5bbb967',
);

/** DNS query "example.com AAAA", UDP 57392 -> 5353. */
export const V6_DNS_QUERY = hex(
  '6000981f 003c 11 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    'e030 14e9 003c 004f' +
    'f57e01200001000000000001076578616d706c6503636f6d00001c000100002904d000000000000c000a0008000b5859288eff47',
);
export const V6_DNS_QUERY_FULL_UDP_CHECKSUM = 0xa4fb;
export const V6_PORT_UNREACHABLE = hex(
  '6001e926 006c 3a 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '0104 99b1 00000000' +
    '6000981f 003c 11 40 00000000000000000000000000000001 00000000000000000000000000000001 e030 14e9 003c 004f' +
    'f57e01200001000000000001076578616d706c6503636f6d00001c000100002904d000000000000c000a0008000b5859288eff47',
);

/** SYN 37144 -> 9: MSS 65495, SACK-permitted, TS 833906527/0, NOP, WS 10. */
export const V4_TCP_SYN = hex(
  '4500003c 197a 4000 4006 2340 7f000001 7f000001' +
    '9118 0009 82292d55 00000000 a0 02 ffd7 fe30 0000' +
    '0204ffd7 0402 080a 31b4675f 00000000 01 03030a',
);
export const V4_TCP_SYN_FULL_CHECKSUM = 0x764b;
/** The kernel's RST|ACK answer (complete checksum 0x712d). */
export const V4_TCP_RST = hex(
  '45000028 0000 4000 4006 3cce 7f000001 7f000001' + '0009 9118 00000000 82292d56 50 14 0000 712d 0000',
);
export const V6_TCP_SYN = hex(
  '6000ba7d 0028 06 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '8772 0009 5968cf7f 00000000 a0 02 ffc4 0030 0000' +
    '0204ffc4 0402 080a ebd6cf7c 00000000 01 03030a',
);
export const V6_TCP_SYN_FULL_CHECKSUM = 0xe26e;
export const V6_TCP_RST = hex(
  '600e110f 0014 06 40 00000000000000000000000000000001 00000000000000000000000000000001' +
    '0009 8772 00000000 5968cf80 50 14 0000 001c 0000',
);
export const V6_TCP_RST_FULL_CHECKSUM = 0xff6a;

/** Wikipedia's "IPv4 header checksum" worked example (192.168.0.1 -> 192.168.0.199). */
export const WIKIPEDIA_IPV4_HEADER = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');

export const LOOPBACK4 = hex('7f000001');
export const LOOPBACK6 = hex('00000000000000000000000000000001');

/** Byte-wise RFC 1071 reference, deliberately naive: the oracle for the fast routine. */
export function naiveChecksum(bytes: Buffer | number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

/** Seeded uint32s (scripts/lab/prng) so a failing fuzz case can be replayed. */
export function rng(seed: number): () => number {
  const next = seededRandom(seed);
  return () => Math.floor(next() * 0x100000000);
}

export function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/** The result of a parse the test expects to succeed; a WireError fails the test with its reason. */
export function parsedOk<T>(result: T | WireError): T {
  if (isWireError(result)) throw new Error(`fixture did not parse: ${result.reason}`);
  return result;
}

/** The reason of a WireError, null for anything else: what the rejection tests compare. */
export function reasonOf(x: unknown): string | null {
  return x instanceof WireError ? x.reason : null;
}

/** A copy of `buf` with the 16-bit field at `at` set to `value` (a completed or zeroed checksum). */
export function withUint16(buf: Buffer, at: number, value: number): Buffer {
  const b = Buffer.from(buf);
  b.writeUInt16BE(value, at);
  return b;
}
