// The decision: one call per new flow (TCP SYN, first UDP datagram, ICMP
// packet) and again once the flow's name (SNI, HTTP Host) is read. Each
// field of the query selects the bitset of rules that field lets through;
// the lowest bit common to all of them is the first matching rule. Bitsets
// are computed on first use per user / port interval / prefix node / domain
// node and cached within a byte budget, so a decision is a few map lookups
// and one AND over rules/32 words, whatever the number of rules.
import { BitsetCache, firstCommon, hasBit, setBit, clearBit, type Bitset } from './bitset';
import type { CidrTrie } from './cidr_trie';
import type { CategoryInfo, CompiledRule, Verdict } from './compile';
import { queryHost, type DomainTrie } from './domains';
import type { PortIndex } from './ports';

export type FlowProtocol = 'tcp' | 'udp' | 'icmp';

export interface FlowQuery {
  user: string;
  protocol: FlowProtocol;
  /** Destination address bytes: 4 (IPv4) or 16 (IPv6). A view into the packet is fine; nothing is kept. */
  dst: Uint8Array;
  /** 0 for ICMP. */
  dstPort: number;
  /** SNI, or the HTTP Host without its port; null when the flow has no name (yet). */
  host: string | null;
}

/** A decision made before the flow's name is known (at the SYN or first datagram). */
export interface EarlyDecision {
  /** The decision if the flow never shows a name. */
  verdict: Verdict;
  /** An earlier rule with hosts/categories could still match once the SNI/Host is read: decide again then. */
  hostMayMatter: boolean;
}

/** Built by compile.ts; see there for what each table holds. */
export interface PolicyTables {
  words: number;
  tcp: Bitset;
  udp: Bitset;
  icmp: Bitset;
  noWho: Bitset;
  userPos: Map<string, number[]>;
  userNeg: Map<string, number[]>;
  noPorts: Bitset;
  ports: PortIndex;
  noDst: Bitset;
  v4: CidrTrie;
  v6: CidrTrie;
  noName: Bitset;
  domains: DomainTrie;
  nodeCat: number[];
  nodeMoreCats: Map<number, number[]>;
  exactRules: Map<number, number[]>;
  wildRules: Map<number, number[]>;
  catRules: number[][];
  /** Category id -> name, for the categories loaded into `domains`. */
  catNames: string[];
  pinnedCat: number;
}

/** Per cache; five caches, so at most about 20 MB whatever the traffic. */
const CACHE_BUDGET_BYTES = 4 << 20;

export class Policy {
  private readonly byUser: BitsetCache<string>;
  private readonly byPort: BitsetCache<number>;
  private readonly byPrefix4: BitsetCache<number>;
  private readonly byPrefix6: BitsetCache<number>;
  private readonly byName: BitsetCache<number>;
  private readonly everything: Bitset;

  constructor(
    private readonly t: PolicyTables,
    /** In order; the last one is the implicit `no-match` allow. */
    readonly rules: readonly CompiledRule[],
    readonly categories: readonly CategoryInfo[],
    /** True when policy.rules is absent and the built-in defaults apply. */
    readonly usesDefaults: boolean,
    /** Group -> members, as configured. */
    readonly groups: Readonly<Record<string, readonly string[]>>,
  ) {
    this.byUser = new BitsetCache(t.words, CACHE_BUDGET_BYTES);
    this.byPort = new BitsetCache(t.words, CACHE_BUDGET_BYTES);
    this.byPrefix4 = new BitsetCache(t.words, CACHE_BUDGET_BYTES);
    this.byPrefix6 = new BitsetCache(t.words, CACHE_BUDGET_BYTES);
    this.byName = new BitsetCache(t.words, CACHE_BUDGET_BYTES);
    this.everything = new Uint32Array(t.words).fill(0xffffffff);
  }

  /** The verdict for a flow; `host` null means the flow has no name and only rules without hosts/categories apply. */
  decide(q: FlowQuery): Verdict {
    return this.rules[this.first(q, this.nameBits(q.host))].verdict;
  }

  /** The verdict before the name is read, and whether reading it could change the verdict. */
  decideBeforeHost(q: FlowQuery): EarlyDecision {
    const any = this.first(q, this.everything);
    if (hasBit(this.t.noName, any)) return { verdict: this.rules[any].verdict, hostMayMatter: false };
    return { verdict: this.rules[this.first(q, this.t.noName)].verdict, hostMayMatter: true };
  }

  /** The name is on the shipped list of certificate-pinning apps (bypass reason `pinned-listed`). */
  pinnedListed(host: string | null): boolean {
    const h = queryHost(host);
    return h !== null && this.t.pinnedCat >= 0 && this.categoryIdsOn(h).includes(this.t.pinnedCat);
  }

  /** Categories loaded for lookups whose domains cover the name, as [category, listed domain] pairs. */
  categoriesOf(host: string | null): [string, string][] {
    const h = queryHost(host);
    const out: [string, string][] = [];
    for (let start = h === null ? -1 : 0; h !== null && start >= 0; ) {
      const suffix = h.substring(start);
      const node = this.t.domains.nodeOf(suffix);
      if (node !== undefined) for (const id of this.catsAt(node)) out.push([this.t.catNames[id], suffix]);
      const dot = h.indexOf('.', start);
      start = dot < 0 ? -1 : dot + 1;
    }
    return out;
  }

  private first(q: FlowQuery, name: Bitset): number {
    const t = this.t;
    const proto = q.protocol === 'tcp' ? t.tcp : q.protocol === 'udp' ? t.udp : t.icmp;
    const user = this.byUser.get(q.user, this.userBits);
    const port = q.protocol === 'icmp' ? t.noPorts : this.byPort.get(t.ports.interval(q.dstPort), this.portBits);
    return firstCommon(proto, user, port, this.dstBits(q.dst), name);
  }

  private dstBits(dst: Uint8Array): Bitset {
    const buf = dst as Buffer;
    if (dst.length === 4) return this.prefixBits(this.t.v4.lookup(buf, 0), this.byPrefix4, this.v4Bits);
    if (dst.length !== 16) throw new TypeError(`policy: a destination is 4 or 16 bytes, got ${dst.length}`);
    // An IPv4-mapped address (::ffff:a.b.c.d) reaches the IPv4 host: match it as IPv4.
    if (isV4Mapped(dst)) return this.prefixBits(this.t.v4.lookup(buf, 12), this.byPrefix4, this.v4Bits);
    return this.prefixBits(this.t.v6.lookup(buf, 0), this.byPrefix6, this.v6Bits);
  }

  private prefixBits(node: number, cache: BitsetCache<number>, compute: (node: number) => Bitset): Bitset {
    return node < 0 ? this.t.noDst : cache.get(node, compute);
  }

  private nameBits(host: string | null): Bitset {
    const h = queryHost(host);
    if (h === null) return this.t.noName;
    return this.byName.get(this.t.domains.locate(h), this.hostBits);
  }

  // Cache fillers, bound once (no closure per decision).
  private readonly userBits = (user: string): Bitset => {
    const b = Uint32Array.from(this.t.noWho);
    for (const i of this.t.userPos.get(user) ?? []) setBit(b, i);
    for (const i of this.t.userNeg.get(user) ?? []) clearBit(b, i);
    return b;
  };

  private readonly portBits = (interval: number): Bitset => {
    const b = Uint32Array.from(this.t.noPorts);
    this.t.ports.forEachRule(interval, (i) => setBit(b, i));
    return b;
  };

  private readonly v4Bits = (node: number): Bitset => this.pathBits(this.t.v4, node);
  private readonly v6Bits = (node: number): Bitset => this.pathBits(this.t.v6, node);

  private pathBits(trie: CidrTrie, node: number): Bitset {
    const b = Uint32Array.from(this.t.noDst);
    trie.forEachOnPath(node, (i) => setBit(b, i));
    return b;
  }

  /** key = node * 2 + (1 when the node is the whole name); see DomainTrie.locate. */
  private readonly hostBits = (key: number): Bitset => {
    const t = this.t;
    const deepest = key >>> 1;
    const whole = (key & 1) === 1;
    const b = Uint32Array.from(t.noName);
    for (let n = deepest; n >= 0; n = t.domains.parent(n)) {
      for (const c of this.catsAt(n)) for (const i of t.catRules[c]) setBit(b, i);
      // An exact host matches only the whole name; "*.d" only names strictly below d.
      const hostRules = n === deepest && whole ? t.exactRules.get(n) : t.wildRules.get(n);
      for (const i of hostRules ?? []) setBit(b, i);
    }
    return b;
  };

  private catsAt(node: number): number[] {
    const first = this.t.nodeCat[node];
    if (first === undefined || first < 0) return [];
    return [first, ...(this.t.nodeMoreCats.get(node) ?? [])];
  }

  private categoryIdsOn(h: string): number[] {
    const key = this.t.domains.locate(h);
    const out: number[] = [];
    for (let n = key >>> 1; n >= 0; n = this.t.domains.parent(n)) out.push(...this.catsAt(n));
    return out;
  }
}

/** ::ffff:a.b.c.d (RFC 4291 §2.5.5.2). */
export function isV4Mapped(a: Uint8Array): boolean {
  if (a.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}
