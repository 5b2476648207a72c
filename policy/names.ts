// The name dimensions: which rules a flow's SNI/Host lets through, as two
// sets, since a rule that sets both `hosts` and `categories` needs both to
// match. Host patterns and category domains share one suffix trie; walking a
// name's nodes collects categories (a domain covers itself and names below
// it) into one side, exact hosts (the whole name only) and wildcards (names
// strictly below) into the other. Lists used by many rules (a category in
// hundreds of rules) are kept as bitsets already joined with the rules that
// do not set that field; short ones are added one by one, like the
// destination trie does.
import { bitsetOf, orInto, type Bitset, type Extra } from './bitset';
import { HEAVY } from './prefixes';
import type { DomainTrie } from './domains';

/** A rule list on a trie node or category, and its bitset (with the side's rules that do not set the field) when long. */
interface RuleList {
  rules: number[];
  joined: Bitset | null;
}

/**
 * One field's rules for a name, as `base | extra`: base starts as the rules
 * without the field, long lists replace or OR into it, short ones go to extra.
 */
export class NameSide {
  base: Bitset;
  private merged = false;
  /** Where several long lists meet on one name: OR'ed here, per decision. */
  private readonly scratch: Bitset;

  constructor(words: number, readonly none: Bitset) {
    this.scratch = new Uint32Array(words);
    this.base = none;
  }

  list(rules: number[], words: number): RuleList {
    if (rules.length < HEAVY) return { rules, joined: null };
    const b = bitsetOf(words, rules);
    orInto(b, b, this.none);
    return { rules, joined: b };
  }

  reset(): void {
    this.base = this.none;
    this.merged = false;
  }

  take(l: RuleList | undefined, extra: Extra): void {
    if (l === undefined) return;
    if (l.joined === null) extra.addAll(l.rules);
    else if (this.base === this.none) this.base = l.joined;
    else {
      orInto(this.scratch, this.merged ? this.scratch : this.base, l.joined);
      this.base = this.scratch;
      this.merged = true;
    }
  }
}

export class NameIndex {
  private readonly catLists: RuleList[];
  private readonly exact = new Map<number, RuleList>();
  private readonly wild = new Map<number, RuleList>();
  /** Rules by `hosts` (exact and wildcard patterns). */
  readonly hosts: NameSide;
  /** Rules by `categories`. */
  readonly cats: NameSide;

  constructor(
    readonly domains: DomainTrie,
    /** Per node: its first category id, or -1; more in nodeMoreCats. */
    private readonly nodeCat: number[],
    private readonly nodeMoreCats: Map<number, number[]>,
    catRules: number[][],
    exactRules: Map<number, number[]>,
    wildRules: Map<number, number[]>,
    words: number,
    noHosts: Bitset,
    noCats: Bitset,
  ) {
    this.hosts = new NameSide(words, noHosts);
    this.cats = new NameSide(words, noCats);
    this.catLists = catRules.map((rules) => this.cats.list(rules, words));
    for (const [node, rules] of exactRules) this.exact.set(node, this.hosts.list(rules, words));
    for (const [node, rules] of wildRules) this.wild.set(node, this.hosts.list(rules, words));
  }

  /**
   * The rules a name lets through, per field: `hosts.base` plus what is added
   * to `hostExtra`, and `cats.base` plus `catExtra`. `key` is
   * DomainTrie.locate's (node * 2 + whole-name flag).
   */
  select(key: number, hostExtra: Extra, catExtra: Extra): void {
    const deepest = key >>> 1;
    const whole = (key & 1) === 1;
    this.hosts.reset();
    this.cats.reset();
    for (let n = deepest; n >= 0; n = this.domains.parent(n)) {
      const c = this.nodeCat[n];
      if (c >= 0) {
        this.cats.take(this.catLists[c], catExtra);
        const more = this.nodeMoreCats.get(n);
        if (more !== undefined) for (const m of more) this.cats.take(this.catLists[m], catExtra);
      }
      // An exact host matches only the whole name; "*.d" only names strictly below d.
      this.hosts.take(n === deepest && whole ? this.exact.get(n) : this.wild.get(n), hostExtra);
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
