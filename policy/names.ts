// The name dimension: which rules a flow's SNI/Host lets through. Host
// patterns and category domains share one suffix trie; walking a name's
// nodes collects categories (a domain covers itself and names below it),
// exact hosts (the whole name only) and wildcards (names strictly below).
// Lists used by many rules (a category in hundreds of rules) are kept as
// bitsets already joined with the rules that set no name; short ones are
// added one by one, like the destination trie does.
import { bitsetOf, orInto, type Bitset, type Extra } from './bitset';
import { HEAVY } from './prefixes';
import type { DomainTrie } from './domains';

/** A rule list on a trie node or category, and its bitset (with noName) when long. */
interface RuleList {
  rules: number[];
  joined: Bitset | null;
}

export class NameIndex {
  private readonly catLists: RuleList[];
  private readonly exact = new Map<number, RuleList>();
  private readonly wild = new Map<number, RuleList>();
  /** Where several long lists meet on one name: OR'ed here, per decision. */
  private readonly scratch: Bitset;

  constructor(
    readonly domains: DomainTrie,
    /** Per node: its first category id, or -1; more in nodeMoreCats. */
    private readonly nodeCat: number[],
    private readonly nodeMoreCats: Map<number, number[]>,
    catRules: number[][],
    exactRules: Map<number, number[]>,
    wildRules: Map<number, number[]>,
    private readonly words: number,
    private readonly noName: Bitset,
  ) {
    const list = (rules: number[]): RuleList => ({ rules, joined: rules.length >= HEAVY ? this.join(rules) : null });
    this.catLists = catRules.map(list);
    for (const [node, rules] of exactRules) this.exact.set(node, list(rules));
    for (const [node, rules] of wildRules) this.wild.set(node, list(rules));
    this.scratch = new Uint32Array(words);
    this.base = noName;
  }

  private join(rules: number[]): Bitset {
    const b = bitsetOf(this.words, rules);
    orInto(b, b, this.noName);
    return b;
  }

  /**
   * The rules a name lets through: the returned base plus what is added to
   * `extra`. `key` is DomainTrie.locate's (node * 2 + whole-name flag).
   */
  select(key: number, extra: Extra): Bitset {
    const deepest = key >>> 1;
    const whole = (key & 1) === 1;
    this.base = this.noName;
    this.merged = false;
    for (let n = deepest; n >= 0; n = this.domains.parent(n)) {
      const c = this.nodeCat[n];
      if (c >= 0) {
        this.take(this.catLists[c], extra);
        const more = this.nodeMoreCats.get(n);
        if (more !== undefined) for (const m of more) this.take(this.catLists[m], extra);
      }
      // An exact host matches only the whole name; "*.d" only names strictly below d.
      this.take(n === deepest && whole ? this.exact.get(n) : this.wild.get(n), extra);
    }
    return this.base;
  }

  // select()'s running result, in fields rather than a closure per decision.
  private base: Bitset;
  private merged = false;

  private take(l: RuleList | undefined, extra: Extra): void {
    if (l === undefined) return;
    if (l.joined === null) extra.addAll(l.rules);
    else if (this.base === this.noName) this.base = l.joined;
    else {
      orInto(this.scratch, this.merged ? this.scratch : this.base, l.joined);
      this.base = this.scratch;
      this.merged = true;
    }
  }

  /** Category ids whose domains cover the name at `key`. */
  categoriesAt(key: number): number[] {
    const out: number[] = [];
    for (let n = key >>> 1; n >= 0; n = this.domains.parent(n)) out.push(...this.catsOf(n));
    return out;
  }

  /** Category ids listing exactly this node's domain. */
  catsOf(node: number): number[] {
    const first = this.nodeCat[node];
    if (first === undefined || first < 0) return [];
    return [first, ...(this.nodeMoreCats.get(node) ?? [])];
  }
}
