// Source addresses as the addon reports them: 18-byte entries, a 16-byte
// IPv6 address (IPv4 as ::ffff:a.b.c.d, RFC 4291 §2.5.5.2) then the port,
// both in network byte order. Text is made only when asked for, and a batch
// from one peer formats its address once.
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
  if (isV4Mapped(table, at)) return `${table[at + 12]}.${table[at + 13]}.${table[at + 14]}.${table[at + 15]}`;
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) groups.push(table.readUInt16BE(at + 2 * g));
  // RFC 5952 §4.2: the longest run (the first on a tie) of two or more zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && groups[end] === 0) end++;
    if (end - g > bestLen) {
      bestStart = g;
      bestLen = end - g;
    }
    g = end;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((v) => v.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
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
