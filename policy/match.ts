// The decision: one call per new flow (TCP SYN, first UDP datagram, ICMP
// packet) and again once the flow's name (SNI, HTTP Host) is read. Each
// field of the query selects the set of rules that field lets through, as
// bitsets in rule order; the lowest bit common to all of them is the first
// matching rule (every field a rule sets must match: users and groups,
// hosts and categories are separate fields, each a condition of its own). Protocol+port and user sets are cached per key (few keys);
// destination and name sets are a shared precomputed base plus a few rules
// added for this query, so nothing is allocated per decision.
import { BitsetCache, Extra, firstCommon, hasBit, setBit, clearBit, type Bitset } from './bitset';
import type { PrefixIndex } from './prefixes';
import type { CategoryInfo, CompiledRule, Verdict } from './compile';
import { queryHost } from './domains';
import { fixedIpv4Form } from '../netstack/wire';
import type { NameIndex } from './names';
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

/** Built by compile.ts: per field, the rules that do not set it, and an index for those that do. */
export interface PolicyTables {
  words: number;
  tcp: Bitset;
  udp: Bitset;
  icmp: Bitset;
  noUsers: Bitset;
  noGroups: Bitset;
  /** User -> rules listing the user in `users`. */
  byUsers: Map<string, number[]>;
  /** User -> rules naming a group the user is a member of in `groups`. */
  byGroups: Map<string, number[]>;
  /** User -> rules whose notUsers/notGroups exclude the user. */
  userNeg: Map<string, number[]>;
  noPorts: Bitset;
  ports: PortIndex;
  noDst: Bitset;
  v4: PrefixIndex;
  v6: PrefixIndex;
  /** Rules with neither hosts nor categories: all a flow without a name can match. */
  noName: Bitset;
  noHosts: Bitset;
  noCats: Bitset;
  names: NameIndex;
  /** Category id -> name, for the categories loaded into `names`. */
  catNames: string[];
  pinnedCat: number;
}

/** Per cache; so at most about 8 MB whatever the traffic. */
const CACHE_BUDGET_BYTES = 4 << 20;

const enum NameMode { Known, None, Any }

export class Policy {
  private readonly byUser: BitsetCache<string>;
  private readonly byPort: BitsetCache<number>;
  private readonly icmpNoPorts: Bitset;
  private readonly everything: Bitset;
  private readonly dstExtra: Extra;
  private readonly hostExtra: Extra;
  private readonly catExtra: Extra;

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
    this.icmpNoPorts = t.icmp.map((w, i) => w & t.noPorts[i]);
    this.everything = new Uint32Array(t.words).fill(0xffffffff);
    this.dstExtra = new Extra(t.words);
    this.hostExtra = new Extra(t.words);
    this.catExtra = new Extra(t.words);
  }

  /** The verdict for a flow; `host` null means the flow has no name and only rules without hosts/categories apply. */
  decide(q: FlowQuery): Verdict {
    return this.rules[this.first(q, NameMode.Known)].verdict;
  }

  /** The verdict before the name is read, and whether reading it could change the verdict. */
  decideBeforeHost(q: FlowQuery): EarlyDecision {
    const any = this.first(q, NameMode.Any);
    if (hasBit(this.t.noName, any)) return { verdict: this.rules[any].verdict, hostMayMatter: false };
    return { verdict: this.rules[this.first(q, NameMode.None)].verdict, hostMayMatter: true };
  }

  /** The name is on the shipped list of certificate-pinning apps (bypass reason `pinned-listed`). */
  pinnedListed(host: string | null): boolean {
    const h = queryHost(host);
    if (h === null || this.t.pinnedCat < 0) return false;
    return this.t.names.categoriesAt(this.t.names.domains.locate(h)).includes(this.t.pinnedCat);
  }

  /** Categories loaded for lookups whose domains cover the name, as [category, listed domain] pairs. */
  categoriesOf(host: string | null): [string, string][] {
    const h = queryHost(host);
    const out: [string, string][] = [];
    for (let start = h === null ? -1 : 0; h !== null && start >= 0; ) {
      const suffix = h.substring(start);
      const node = this.t.names.domains.nodeOf(suffix);
      if (node !== undefined) for (const id of this.t.names.catsOf(node)) out.push([this.t.catNames[id], suffix]);
      const dot = h.indexOf('.', start);
      start = dot < 0 ? -1 : dot + 1;
    }
    return out;
  }

  private first(q: FlowQuery, mode: NameMode): number {
    const t = this.t;
    const a = q.protocol === 'icmp' ? this.icmpNoPorts : this.byPort.get(t.ports.interval(q.dstPort) * 2 + (q.protocol === 'udp' ? 1 : 0), this.portBits);
    const u = this.byUser.get(q.user, this.userBits);
    const prefixes = this.prefixesFor(q.dst);
    try {
      const dB = prefixes.select(prefixes.lookup(q.dst, this.offset), t.noDst, this.dstExtra);
      let hB = mode === NameMode.Any ? this.everything : t.noHosts;
      let cB = mode === NameMode.Any ? this.everything : t.noCats;
      if (mode === NameMode.Known) {
        const h = queryHost(q.host);
        if (h !== null) {
          t.names.select(t.names.domains.locate(h), this.hostExtra, this.catExtra);
          hB = t.names.hosts.base;
          cB = t.names.cats.base;
        }
      }
      return firstCommon(a, u, dB, this.dstExtra.bits, hB, this.hostExtra.bits, cB, this.catExtra.bits);
    } finally {
      this.dstExtra.clear();
      this.hostExtra.clear();
      this.catExtra.clear();
    }
  }

  /** Set by prefixesFor: where the address starts in q.dst. */
  private offset = 0;

  private prefixesFor(dst: Uint8Array): PrefixIndex {
    this.offset = 0;
    if (dst.length === 4) return this.t.v4;
    if (dst.length !== 16) throw new TypeError(`policy: a destination is 4 or 16 bytes, got ${dst.length}`);
    if (!embedsIpv4(dst)) return this.t.v6;
    // An IPv6 form that reaches an IPv4 host is matched as that IPv4 address, as the egress guard reads it.
    this.offset = 12;
    return this.t.v4;
  }

  // Cache fillers, bound once (no closure per decision).
  /** (no users, or listed) and (no groups, or a member of one), minus the excluded. */
  private readonly userBits = (user: string): Bitset => {
    const t = this.t;
    const listed = t.noUsers.slice();
    for (const i of t.byUsers.get(user) ?? []) setBit(listed, i);
    const member = t.noGroups.slice();
    for (const i of t.byGroups.get(user) ?? []) setBit(member, i);
    for (let w = 0; w < listed.length; w++) listed[w] &= member[w];
    for (const i of t.userNeg.get(user) ?? []) clearBit(listed, i);
    return listed;
  };

  /** key = port interval * 2 + (1 for UDP, 0 for TCP): the protocol folded into the port's set. */
  private readonly portBits = (key: number): Bitset => {
    const b = this.t.noPorts.slice();
    this.t.ports.addRules(key >>> 1, b);
    const proto = (key & 1) === 1 ? this.t.udp : this.t.tcp;
    for (let w = 0; w < b.length; w++) b[w] &= proto[w];
    return b;
  };
}

/** ::ffff:a.b.c.d (RFC 4291 §2.5.5.2). */
/**
 * An IPv6 address that reaches an IPv4 host through its last four bytes, in
 * the forms the egress guard reads too (fixedIpv4Form). Otherwise an IPv4
 * rule could be dodged by writing its address in one of them. (64:ff9b:1::/48
 * has no fixed place for the address; the guard checks every reading of it.)
 */
export function embedsIpv4(a: Uint8Array): boolean {
  return a.length === 16 && fixedIpv4Form(a, 0) !== null;
}
