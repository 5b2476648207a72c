// The one IP address type of the project, plus a Map key computed straight
// from packet bytes so the receive path never builds an IpAddress per packet.
import { Address4, Address6 } from 'ip-address';

export type IpFamily = 4 | 6;

declare const addressKeyBrand: unique symbol;
/**
 * A Map key for an address: IPv4 is its uint32 value, IPv6 a 16-char latin1
 * string of its bytes. The two kinds never collide (number vs string).
 */
export type AddressKey = (number | string) & { readonly [addressKeyBrand]: true };

export function addressLength(family: IpFamily): 4 | 16 {
  return family === 4 ? 4 : 16;
}

/** Same key as `IpAddress.key`, read from packet bytes without allocating an IpAddress. */
export function addressKeyOf(buf: Buffer, offset: number, family: IpFamily): AddressKey {
  if (family === 4) return buf.readUInt32BE(offset) as AddressKey;
  return buf.toString('latin1', offset, offset + 16) as AddressKey;
}

function formatV4(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

// RFC 5952 §4: lowercase hex, no leading zeros, the longest run (first on a
// tie) of two or more zero groups becomes "::"; §5: IPv4-mapped keeps dotted form.
function formatV6(b: Buffer, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(off + i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatV4(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/** The IPv6 forms whose last four bytes are an IPv4 address the packet reaches. */
export type FixedIpv4Form = 'ipv4_mapped' | 'ipv4_compatible' | 'nat64';

/**
 * Which of those forms the IPv6 address at `o` is, or null: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, RFC 4291 §2.5.5.1; :: and ::1
 * are the IPv6 unspecified and loopback addresses, not such), or NAT64's
 * well-known prefix (64:ff9b::/96, RFC 6052).
 */
export function fixedIpv4Form(b: Uint8Array, o: number): FixedIpv4Form | null {
  for (let i = o + 4; i < o + 10; i++) if (b[i] !== 0) return null;
  const zero4 = b[o] === 0 && b[o + 1] === 0 && b[o + 2] === 0 && b[o + 3] === 0;
  if (zero4 && b[o + 10] === 0xff && b[o + 11] === 0xff) return 'ipv4_mapped';
  if (zero4 && b[o + 10] === 0 && b[o + 11] === 0) {
    const unspecifiedOrLoopback = b[o + 12] === 0 && b[o + 13] === 0 && b[o + 14] === 0 && b[o + 15] <= 1;
    return unspecifiedOrLoopback ? null : 'ipv4_compatible';
  }
  const nat64 = b[o] === 0x00 && b[o + 1] === 0x64 && b[o + 2] === 0xff && b[o + 3] === 0x9b && b[o + 10] === 0 && b[o + 11] === 0;
  return nat64 ? 'nat64' : null;
}

/**
 * The one text form of an address (dotted IPv4, RFC 5952 IPv6), read straight
 * from bytes at `offset` so a packet or an addon table needs no IpAddress.
 */
export function formatAddress(buf: Buffer, offset: number, family: IpFamily): string {
  return family === 4 ? formatV4(buf, offset) : formatV6(buf, offset);
}

export class IpAddress {
  /** Map key; equal addresses have equal keys. */
  readonly key: AddressKey;

  private constructor(
    readonly family: IpFamily,
    /** 4 or 16 bytes, owned by this object (never a view into a packet). */
    readonly bytes: Buffer,
  ) {
    this.key = addressKeyOf(bytes, 0, family);
  }

  /** Copies `buf` (4 bytes → IPv4, 16 bytes → IPv6). */
  static fromBytes(buf: Buffer): IpAddress {
    if (buf.length === 4) return new IpAddress(4, Buffer.from(buf));
    if (buf.length === 16) return new IpAddress(6, Buffer.from(buf));
    throw new RangeError(`IpAddress.fromBytes: expected 4 or 16 bytes, got ${buf.length}`);
  }

  /**
   * Parses config / CLI text. Throws with the offending text: zone ids,
   * prefixes and IPv4 octets with leading zeros (octal ambiguity) are refused.
   */
  static parse(text: string): IpAddress {
    const a = IpAddress.tryParse(text);
    if (a === null) {
      throw new Error(`invalid IP address "${text}": expected dotted IPv4 (10.0.0.1) or IPv6 (fd00::1) without prefix or zone`);
    }
    return a;
  }

  static tryParse(text: string): IpAddress | null {
    if (text.includes('/') || text.includes('%')) return null;
    try {
      if (text.includes(':')) {
        return new IpAddress(6, Buffer.from(new Address6(text).toUnsignedByteArray()));
      }
      return new IpAddress(4, Buffer.from(new Address4(text).toArray()));
    } catch {
      return null;
    }
  }

  /** The address as an unsigned integer: pool arithmetic (a lease's host index). Not for the packet path. */
  static fromBigInt(family: IpFamily, value: bigint): IpAddress {
    const out = Buffer.alloc(addressLength(family));
    let v = value;
    for (let i = out.length - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    if (v !== 0n) throw new RangeError(`IpAddress.fromBigInt: ${value} is not an IPv${family} address`);
    return new IpAddress(family, out);
  }

  toBigInt(): bigint {
    let v = 0n;
    for (const byte of this.bytes) v = (v << 8n) | BigInt(byte);
    return v;
  }

  equals(other: IpAddress): boolean {
    return this.key === other.key;
  }

  toString(): string {
    return formatAddress(this.bytes, 0, this.family);
  }
}

export class IpCidr {
  private constructor(
    /** The address as written (host bits kept, e.g. an interface address). */
    readonly address: IpAddress,
    readonly prefixLength: number,
  ) {}

  static of(address: IpAddress, prefixLength: number): IpCidr {
    const max = address.family === 4 ? 32 : 128;
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > max) {
      throw new RangeError(`prefix length ${prefixLength} out of range 0..${max} for ${address.toString()}`);
    }
    return new IpCidr(address, prefixLength);
  }

  /** "10.0.0.0/24", "fd00::/64"; a bare address means a host route (/32, /128). */
  static parse(text: string): IpCidr {
    const slash = text.indexOf('/');
    const address = IpAddress.parse(slash < 0 ? text : text.slice(0, slash));
    const max = address.family === 4 ? 32 : 128;
    if (slash < 0) return new IpCidr(address, max);
    const len = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) {
      throw new Error(`invalid prefix length in "${text}": expected an integer 0..${max}`);
    }
    return new IpCidr(address, Number(len));
  }

  get family(): IpFamily {
    return this.address.family;
  }

  /** The network address (host bits cleared). */
  get network(): IpAddress {
    const out = Buffer.from(this.address.bytes);
    for (let bit = this.prefixLength; bit < out.length * 8; bit++) {
      out[bit >> 3] &= ~(0x80 >> (bit & 7));
    }
    return IpAddress.fromBytes(out);
  }

  /** The last address of the prefix (host bits set): an IPv4 subnet's directed broadcast. */
  get lastAddress(): IpAddress {
    const out = Buffer.from(this.address.bytes);
    for (let bit = this.prefixLength; bit < out.length * 8; bit++) {
      out[bit >> 3] |= 0x80 >> (bit & 7);
    }
    return IpAddress.fromBytes(out);
  }

  contains(addr: IpAddress): boolean {
    return this.containsBytes(addr.bytes, 0, addr.family);
  }

  /** Prefix match straight on packet bytes (anti-spoofing check on the receive path). */
  containsBytes(buf: Buffer, offset: number, family: IpFamily): boolean {
    if (family !== this.address.family) return false;
    const mine = this.address.bytes;
    const whole = this.prefixLength >> 3;
    for (let i = 0; i < whole; i++) {
      if (mine[i] !== buf[offset + i]) return false;
    }
    const rest = this.prefixLength & 7;
    if (rest === 0) return true;
    const mask = (0xff << (8 - rest)) & 0xff;
    return ((mine[whole] ^ buf[offset + whole]) & mask) === 0;
  }

  toString(): string {
    return `${this.address.toString()}/${this.prefixLength}`;
  }
}
