// Destination prefixes as a binary trie per address family, one bit per
// level. A lookup walks the destination's bits straight from packet bytes
// and returns the deepest node that carries rules: the rules of that node
// and of its marked ancestors are exactly the rules whose `dst` contains the
// address. Nodes live in flat arrays (no object per node).
import type { IpCidr } from '../netstack/wire';

export class CidrTrie {
  private readonly zero: number[] = [0];
  private readonly one: number[] = [0];
  /** Per node: the nearest marked proper ancestor (or -1), set by freeze(). */
  private readonly markedParent: number[] = [-1];
  private readonly marks = new Map<number, number[]>();
  /** 1 where a node carries values: the lookup tests this, not the Map. */
  private readonly isMarked: number[] = [0];

  constructor(private readonly bits: 32 | 128) {}

  /** Attaches `value` (a rule index) to the prefix's node. */
  insert(cidr: IpCidr, value: number): void {
    const bytes = cidr.network.bytes;
    let node = 0;
    for (let d = 0; d < cidr.prefixLength; d++) {
      const bit = (bytes[d >> 3] >> (7 - (d & 7))) & 1;
      const next = bit === 0 ? this.zero : this.one;
      if (next[node] === 0) {
        next[node] = this.zero.length;
        this.zero.push(0);
        this.one.push(0);
        this.markedParent.push(-1);
        this.isMarked.push(0);
      }
      node = next[node];
    }
    const list = this.marks.get(node);
    this.isMarked[node] = 1;
    if (list === undefined) this.marks.set(node, [value]);
    else if (list[list.length - 1] !== value) list.push(value);
  }

  /** Links every node to its nearest marked ancestor; call once after the inserts. */
  freeze(): void {
    const walk = (node: number, marked: number): void => {
      this.markedParent[node] = marked;
      const below = this.isMarked[node] === 1 ? node : marked;
      if (this.zero[node] !== 0) walk(this.zero[node], below);
      if (this.one[node] !== 0) walk(this.one[node], below);
    };
    walk(0, -1);
  }

  /**
   * The deepest marked node on the path of the address at buf[offset..], or
   * -1 when no prefix contains it. Node 0 (the root) is the /0.
   */
  lookup(buf: Buffer, offset: number): number {
    let node = 0;
    let deepest = this.isMarked[0] === 1 ? 0 : -1;
    for (let d = 0; d < this.bits; d++) {
      const bit = (buf[offset + (d >> 3)] >> (7 - (d & 7))) & 1;
      const next = bit === 0 ? this.zero[node] : this.one[node];
      if (next === 0) break;
      node = next;
      if (this.isMarked[node] === 1) deepest = node;
    }
    return deepest;
  }

  /** Calls fn with every value on the marked node and its marked ancestors. */
  forEachOnPath(marked: number, fn: (value: number) => void): void {
    for (let n = marked; n >= 0; n = this.markedParent[n]) {
      for (const v of this.marks.get(n) ?? []) fn(v);
    }
  }
}
