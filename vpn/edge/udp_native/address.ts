// Source addresses as the addon reports them: 18-byte entries, a 16-byte
// IPv6 address (IPv4 as ::ffff:a.b.c.d, RFC 4291 §2.5.5.2) then the port,
// both in network byte order. Text is made only when asked for, and a batch
// from one peer formats its address once.
import { formatAddress } from '../../../netstack/wire';

export const ADDR_ENTRY = 18;
const PORT_OFFSET = 16;

export function entryPort(table: Buffer, i: number): number {
  return table.readUInt16BE(i * ADDR_ENTRY + PORT_OFFSET);
}

function isV4Mapped(table: Buffer, at: number): boolean {
  return table.readUInt32BE(at) === 0 && table.readUInt32BE(at + 4) === 0 && table.readUInt32BE(at + 8) === 0xffff;
}

/** Text of entry i: dotted IPv4 for IPv4 sources (also on a dual-stack socket), RFC 5952 IPv6 otherwise. */
export function formatEntryAddress(table: Buffer, i: number): string {
  const at = i * ADDR_ENTRY;
  return isV4Mapped(table, at) ? formatAddress(table, at + 12, 4) : formatAddress(table, at, 6);
}

/**
 * Remembers the last formatted entry, so consecutive datagrams from the same
 * address (a bulk transfer from one peer) cost one comparison, not a string.
 */
export class AddressCache {
  private w0 = -1;
  private w1 = -1;
  private w2 = -1;
  private w3 = -1;
  private lastText = '';

  text(table: Buffer, i: number): string {
    const at = i * ADDR_ENTRY;
    const w0 = table.readInt32BE(at), w1 = table.readInt32BE(at + 4), w2 = table.readInt32BE(at + 8), w3 = table.readInt32BE(at + 12);
    if (w0 !== this.w0 || w1 !== this.w1 || w2 !== this.w2 || w3 !== this.w3 || this.lastText === '') {
      this.w0 = w0;
      this.w1 = w1;
      this.w2 = w2;
      this.w3 = w3;
      this.lastText = formatEntryAddress(table, i);
    }
    return this.lastText;
  }
}
