// The one Internet checksum routine (RFC 1071), pseudo-header sums for
// TCP/UDP/ICMPv6 (RFC 768, RFC 9293 §3.1, RFC 8200 §8.1) and incremental
// updates for rewritten fields (RFC 1624).

import { loadNativeAddon } from '../native_addon';

// Below this many bytes a DataView costs more to create than it saves
// (measured: for 1500 bytes DataView.getUint32 ≈ 0.4 µs vs 0.7 µs indexing).
const DATAVIEW_MIN = 64;

// From this many bytes the sum is taken by our addon (native/checksum.c) when
// it is built: measured below. Without it (not built, not Linux, or
// SIGHTLINE_WIRE_NATIVE=off) the JS loop below does it all.
const NATIVE_MIN = 128;
interface WireNative {
  sum(buf: Uint8Array, start: number, end: number): number;
}
const wireNative = loadWireNative();

function loadWireNative(): WireNative | null {
  if (process.env.SIGHTLINE_WIRE_NATIVE === 'off') return null;
  const addon = loadNativeAddon<WireNative>('wire_native.node', 'native checksums');
  return typeof addon === 'string' ? null : addon;
}

/** Whether sums of long ranges are taken natively (for tests and benchmarks). */
export const nativeChecksum = wireNative !== null;

function fold(sum: number): number {
  // Sums of 32-bit words exceed 2^32, so no bitwise ops until folded below it.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * One's complement sum of buf[start, end) plus `initial`, folded to 16 bits
 * and not complemented — a partial sum to chain (pseudo-header, then data).
 * 32-bit words are summed and folded at the end: RFC 1071 §2(C), the sum is
 * independent of the word size as long as carries are folded back.
 */
export function onesComplementSum(buf: Buffer, start: number, end: number, initial = 0): number {
  if (wireNative !== null && end - start >= NATIVE_MIN) {
    const sum = wireNative.sum(buf, start, end);
    if (sum >= 0) return fold(sum + initial);
  }
  return onesComplementSumJs(buf, start, end, initial);
}

/** onesComplementSum in JavaScript alone (the fallback, and the reference the addon is tested against). */
export function onesComplementSumJs(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  const end4 = start + ((end - start) & ~3);
  if (end4 - start >= DATAVIEW_MIN) {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    for (; i < end4; i += 4) sum += dv.getUint32(i);
  } else {
    for (; i < end4; i += 4) {
      sum += buf[i] * 0x1000000 + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
    }
  }
  if (end - i >= 2) {
    sum += (buf[i] << 8) | buf[i + 1];
    i += 2;
  }
  // RFC 1071 §4.1: an odd trailing byte is padded with a zero low byte.
  if (i < end) sum += buf[i] << 8;
  return fold(sum);
}

/**
 * The value to store in a checksum field: the complement of the sum of
 * buf[start, end) (field zeroed) and `initial`. Over data that includes a
 * correct checksum field the result is 0.
 */
export function checksum(buf: Buffer, start: number, end: number, initial = 0): number {
  return ~onesComplementSum(buf, start, end, initial) & 0xffff;
}

/** RFC 768 / RFC 9293 §3.1 pseudo-header: src, dst, zero, protocol, length. */
export function pseudoHeaderSumV4(src: Buffer, dst: Buffer, protocol: number, length: number): number {
  const sum = onesComplementSum(src, 0, 4, onesComplementSum(dst, 0, 4));
  return fold(sum + protocol + length);
}

/** RFC 8200 §8.1 pseudo-header: src, dst, 32-bit upper-layer length, zero, next header. */
export function pseudoHeaderSumV6(src: Buffer, dst: Buffer, nextHeader: number, length: number): number {
  const sum = onesComplementSum(src, 0, 16, onesComplementSum(dst, 0, 16));
  return fold(sum + Math.floor(length / 0x10000) + (length & 0xffff) + nextHeader);
}

/** Pseudo-header sum for either family, chosen by the address length (4 or 16). */
export function pseudoHeaderSum(src: Buffer, dst: Buffer, protocol: number, length: number): number {
  return src.length === 4
    ? pseudoHeaderSumV4(src, dst, protocol, length)
    : pseudoHeaderSumV6(src, dst, protocol, length);
}

/**
 * Checksum of an upper-layer message buf[0, length) (TCP, UDP, ICMPv6)
 * chained after its IP pseudo-header. Over a message whose checksum field is
 * correct the result is 0; with the field zeroed it is the value to store.
 */
export function pseudoHeaderChecksum(buf: Buffer, length: number, src: Buffer, dst: Buffer, protocol: number): number {
  return checksum(buf, 0, length, pseudoHeaderSum(src, dst, protocol, length));
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one changed 16-bit word. */
export function updateChecksumWord(hc: number, oldWord: number, newWord: number): number {
  return ~fold((~hc & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff;
}

/**
 * RFC 1624 eqn. 3 over an even-length field that changed from `oldBytes`
 * to `newBytes` (an address, a port), e.g. when rewriting for NAT.
 */
export function updateChecksumBytes(hc: number, oldBytes: Buffer, newBytes: Buffer): number {
  const oldSum = onesComplementSum(oldBytes, 0, oldBytes.length);
  const newSum = onesComplementSum(newBytes, 0, newBytes.length);
  return ~fold((~hc & 0xffff) + (~oldSum & 0xffff) + newSum) & 0xffff;
}

/** Patches the checksum field at buf[checksumAt] for a field changed from old to new bytes. */
export function patchChecksum(buf: Buffer, checksumAt: number, oldBytes: Buffer, newBytes: Buffer): void {
  buf.writeUInt16BE(updateChecksumBytes(buf.readUInt16BE(checksumAt), oldBytes, newBytes), checksumAt);
}
