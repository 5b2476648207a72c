// HPACK decoder (RFC 7541), one per direction of an HTTP/2 connection.
// Decodes whole header blocks (HEADERS + CONTINUATION joined); the dynamic
// table must see every block in order, including blocks of streams the
// logger does not track, or later indices would resolve to the wrong fields.
import { huffmanDecode } from './huffman';
import { STATIC_TABLE, STATIC_TABLE_LEN } from './hpack_static';

/** RFC 7541 §4.1: an entry's size is name + value octets + 32. */
export const ENTRY_OVERHEAD = 32;
/** SETTINGS_HEADER_TABLE_SIZE initial value (RFC 9113 §6.5.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
/** Largest table we keep per direction; Chrome advertises 65536. */
export const MAX_SUPPORTED_TABLE_SIZE = 65536;
/** Decoded header list bound: indexed references can amplify a small block. */
export const DEFAULT_MAX_HEADER_LIST_SIZE = 256 * 1024;

export type HeaderField = readonly [name: string, value: string];
/** What an evicted entry's slot holds until the table is compacted. */
const EVICTED: HeaderField = ['', ''];
export type HpackError =
  | { kind: 'hpack_error'; reason: string };

function fail(reason: string): HpackError {
  return { kind: 'hpack_error', reason };
}

export interface HpackDecoderOptions {
  /** Starting dynamic table size; HTTP/2 starts at 4096 (RFC 9113 §6.5.2). */
  tableSize?: number;
  maxHeaderListSize?: number;
}

export class HpackDecoder {
  /** Oldest first; the newest entry (dynamic index 1) is entries[last]. */
  private entries: HeaderField[] = [];
  private head = 0;
  private size = 0;
  /** The table size the encoder set with its last size update (§6.3). */
  private maxSize = DEFAULT_HEADER_TABLE_SIZE;
  /** The most the decoder side's SETTINGS_HEADER_TABLE_SIZE ever allowed. */
  private allowed = DEFAULT_HEADER_TABLE_SIZE;
  private readonly maxListSize: number;
  private scratch = Buffer.alloc(256);

  constructor(opts: HpackDecoderOptions = {}) {
    this.maxListSize = opts.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
    this.maxSize = Math.min(opts.tableSize ?? DEFAULT_HEADER_TABLE_SIZE, MAX_SUPPORTED_TABLE_SIZE);
    this.allowed = this.maxSize;
  }

  /**
   * The decoding endpoint advertised SETTINGS_HEADER_TABLE_SIZE. Until it is
   * acknowledged the encoder may still use the old value, so the larger of
   * the two is accepted (the logger only mirrors, it never enforces).
   */
  setAllowedTableSize(n: number): void {
    this.allowed = Math.max(this.allowed, n);
  }

  get tableSize(): number {
    return this.size;
  }

  get tableMaxSize(): number {
    return this.maxSize;
  }

  /** Dynamic table, newest first, as §2.3.3 indexes it (for tests). */
  dynamicTable(): HeaderField[] {
    return this.entries.slice(this.head).reverse();
  }

  decode(block: Buffer): HeaderField[] | HpackError {
    const fields: HeaderField[] = [];
    let listSize = 0;
    let p = 0;
    let fieldSeen = false;
    while (p < block.length) {
      const b = block[p];
      let field: HeaderField;
      if (b & 0x80) {
        // §6.1 Indexed Header Field
        const idx = readInt(block, p, 7);
        if (idx === null) return fail('truncated or oversized integer');
        p = idx.next;
        const f = this.lookup(idx.value);
        if (f === null) return fail(`index ${idx.value} out of range`);
        field = f;
      } else if ((b & 0xe0) === 0x20) {
        // §6.3 Dynamic Table Size Update: only before the first field (§4.2).
        if (fieldSeen) return fail('table size update after a header field');
        const n = readInt(block, p, 5);
        if (n === null) return fail('truncated or oversized integer');
        p = n.next;
        if (n.value > this.allowed) return fail(`table size update to ${n.value} above the allowed ${this.allowed}`);
        if (n.value > MAX_SUPPORTED_TABLE_SIZE) return fail(`table size ${n.value} above supported ${MAX_SUPPORTED_TABLE_SIZE}`);
        this.maxSize = n.value;
        this.evictTo(this.maxSize);
        continue;
      } else {
        // §6.2.1 with incremental indexing (6-bit prefix), §6.2.2 without and
        // §6.2.3 never indexed (4-bit prefix); they differ only in indexing.
        const indexing = (b & 0xc0) === 0x40;
        const idx = readInt(block, p, indexing ? 6 : 4);
        if (idx === null) return fail('truncated or oversized integer');
        p = idx.next;
        let name: string;
        if (idx.value === 0) {
          const s = this.readString(block, p);
          if (typeof s === 'string') return fail(s);
          name = s.value;
          p = s.next;
        } else {
          const f = this.lookup(idx.value);
          if (f === null) return fail(`name index ${idx.value} out of range`);
          name = f[0];
        }
        const v = this.readString(block, p);
        if (typeof v === 'string') return fail(v);
        p = v.next;
        field = [name, v.value];
        if (indexing) this.insert(field);
      }
      fieldSeen = true;
      listSize += field[0].length + field[1].length + ENTRY_OVERHEAD;
      if (listSize > this.maxListSize) return fail(`header list over ${this.maxListSize} bytes`);
      fields.push(field);
    }
    return fields;
  }

  private lookup(index: number): HeaderField | null {
    if (index === 0) return null;
    if (index <= STATIC_TABLE_LEN) return STATIC_TABLE[index];
    const i = this.entries.length - (index - STATIC_TABLE_LEN);
    return i >= this.head ? this.entries[i] : null;
  }

  // §4.4: evict before adding; an entry larger than the table empties it
  // and is not added.
  private insert(f: HeaderField): void {
    const sz = f[0].length + f[1].length + ENTRY_OVERHEAD;
    this.evictTo(this.maxSize - sz);
    if (sz > this.maxSize) return;
    this.entries.push(f);
    this.size += sz;
  }

  private evictTo(limit: number): void {
    while (this.size > Math.max(limit, 0) && this.head < this.entries.length) {
      const old = this.entries[this.head];
      this.size -= old[0].length + old[1].length + ENTRY_OVERHEAD;
      // Let go at once: evicted strings kept until compaction could be many times the table's size.
      this.entries[this.head] = EVICTED;
      this.head++;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  // §5.2: H bit, 7-bit prefix length, octets. Strings are latin1 so every
  // byte maps to one char and entry sizes count octets.
  private readString(block: Buffer, p: number): { value: string; next: number } | string {
    if (p >= block.length) return 'truncated string';
    const huffman = (block[p] & 0x80) !== 0;
    const n = readInt(block, p, 7);
    if (n === null) return 'truncated or oversized integer';
    const start = n.next;
    const end = start + n.value;
    if (end > block.length) return 'string longer than the block';
    if (!huffman) return { value: block.toString('latin1', start, end), next: end };
    const need = Math.ceil((n.value * 8) / 5);
    if (this.scratch.length < need) this.scratch = Buffer.alloc(Math.max(need, this.scratch.length * 2));
    const len = huffmanDecode(block, start, end, this.scratch);
    if (typeof len === 'string') return len;
    return { value: this.scratch.toString('latin1', 0, len), next: end };
  }
}

/** Integers bigger than this are refused (no real field or size needs more). */
const MAX_INT = 2 ** 31 - 1;

/** §5.1 prefixed integer starting at block[p] with an N-bit prefix. */
export function readInt(block: Buffer, p: number, prefixBits: number): { value: number; next: number } | null {
  if (p >= block.length) return null;
  const mask = (1 << prefixBits) - 1;
  let value = block[p] & mask;
  p++;
  if (value < mask) return { value, next: p };
  let shift = 0;
  for (;;) {
    if (p >= block.length) return null;
    const b = block[p++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > MAX_INT) return null;
    if ((b & 0x80) === 0) return { value, next: p };
  }
}
