// From the admin's config to the tables a decision reads: rule order becomes
// bit order, each field becomes an index (sorted prefix ranges per address
// family, port intervals, user and group membership, a domain suffix trie
// holding hosts and categories).
// Category files are read here; everything after compile is pure.
import { IpCidr } from '../netstack/wire';
import { bitsetOf, wordsFor } from './bitset';
import { PolicyError, readCategoryFile, readText, type ReadText } from './category_file';
import { PrefixIndex } from './prefixes';
import { defaultRules, PINNED_APPS_CATEGORY, shippedCategoryFiles } from './defaults';
import { DomainTrie, parseHostPattern, type HostPattern } from './domains';
import { Policy, type PolicyTables } from './match';
import { NameIndex } from './names';
import { PortIndex } from './ports';
import { NO_MATCH_ID, parsePortRange, type Action, type RuleConfig, type RuleProtocol, type PolicySource } from './schema';

/** Where a rule comes from: the admin's list, the built-in defaults, or the implicit last rule. */
export type RuleOrigin = 'config' | 'default' | 'implicit';

/** What a decision returns; one frozen object per rule, never allocated per flow. */
export interface Verdict {
  readonly action: Action;
  /** The rule id, as logged in the `rule` field. */
  readonly rule: string;
  readonly index: number;
  readonly origin: RuleOrigin;
}

/** A rule with its fields resolved, for explanations and `policy show`. */
export interface CompiledRule {
  readonly verdict: Verdict;
  readonly source: Readonly<RuleConfig>;
  readonly protocol: RuleProtocol;
  readonly dst: readonly IpCidr[] | null;
  readonly ports: readonly (readonly [number, number])[] | null;
  readonly users: readonly string[] | null;
  readonly groups: readonly string[] | null;
  readonly hosts: readonly HostPattern[] | null;
  readonly categories: readonly string[] | null;
  readonly notUsers: readonly string[] | null;
  readonly notGroups: readonly string[] | null;
}

export interface CategoryInfo {
  name: string;
  file: string;
  /** The list shipped with Sightline (false: the admin's file, possibly replacing a shipped one). */
  shipped: boolean;
  domains: number;
  /** Some rule names it (only those, and pinned-apps, are loaded into the lookup trie). */
  used: boolean;
}

export interface CompileOptions {
  read?: ReadText;
  /** Shipped category files by name (default: policy/categories/*.txt). */
  shipped?: Record<string, string>;
}

export function compilePolicy(source: PolicySource, opts: CompileOptions = {}): Policy {
  const read = opts.read ?? readText;
  const shipped = opts.shipped ?? shippedCategoryFiles();
  const fromDefaults = source.policy.rules === undefined;
  const configured = source.policy.rules ?? defaultRules(source.tls.inspectPorts);
  const rules = [
    ...configured.map((r, i) => resolveRule(r, i, fromDefaults ? 'default' : 'config', source.groups)),
    resolveRule({ id: NO_MATCH_ID, action: 'allow' }, configured.length, 'implicit', source.groups),
  ];

  const files: Record<string, string> = { ...shipped, ...source.policy.categories };
  const used = new Set(rules.flatMap((r) => r.categories ?? []));
  for (const name of used) if (!(name in files)) throw new PolicyError(`rule "${rules.find((r) => r.categories?.includes(name))?.verdict.rule}": unknown category "${name}"`);
  const categories: CategoryInfo[] = [];
  const domains = new DomainTrie();
  const catIds = new Map<string, number>();
  const nodeCat: number[] = [];
  const nodeMoreCats = new Map<number, number[]>();
  for (const [name, file] of Object.entries(files)) {
    const list = readCategoryFile(file, read);
    const isUsed = used.has(name);
    categories.push({ name, file, shipped: shipped[name] === file, domains: list.length, used: isUsed });
    if (!isUsed && name !== PINNED_APPS_CATEGORY) continue;
    const id = catIds.size;
    catIds.set(name, id);
    for (const d of list) {
      const node = domains.add(d);
      while (nodeCat.length <= node) nodeCat.push(-1);
      if (nodeCat[node] === -1 || nodeCat[node] === id) nodeCat[node] = id;
      else {
        const more = nodeMoreCats.get(node) ?? [];
        if (!more.includes(id)) more.push(id);
        nodeMoreCats.set(node, more);
      }
    }
  }

  return new Policy(buildTables(rules, domains, catIds, nodeCat, nodeMoreCats, source.groups), rules, categories, fromDefaults, source.groups);
}

function resolveRule(r: RuleConfig, index: number, origin: RuleOrigin, groups: Record<string, string[]>): CompiledRule {
  for (const g of [...(r.groups ?? []), ...(r.notGroups ?? [])]) {
    if (!(g in groups)) throw new PolicyError(`rule "${r.id}": unknown group "${g}"`);
  }
  const ports = r.ports?.map((p) => {
    const range = parsePortRange(p);
    if (range === null || range[0] > range[1]) throw new PolicyError(`rule "${r.id}": bad port range ${JSON.stringify(p)}`);
    return range;
  });
  const hosts = r.hosts?.map((h) => {
    const p = parseHostPattern(h);
    if (p === null) throw new PolicyError(`rule "${r.id}": bad host pattern ${JSON.stringify(h)}`);
    return p;
  });
  const verdict: Verdict = Object.freeze({ action: r.action, rule: r.id, index, origin });
  return {
    verdict,
    source: r,
    protocol: r.protocol ?? 'any',
    dst: r.dst?.map((c) => IpCidr.parse(c)) ?? null,
    ports: ports ?? null,
    users: r.users ?? null,
    groups: r.groups ?? null,
    hosts: hosts ?? null,
    categories: r.categories ?? null,
    notUsers: r.notUsers ?? null,
    notGroups: r.notGroups ?? null,
  };
}

function buildTables(
  rules: CompiledRule[],
  domains: DomainTrie,
  catIds: Map<string, number>,
  nodeCat: number[],
  nodeMoreCats: Map<number, number[]>,
  groups: Record<string, string[]>,
): PolicyTables {
  const words = wordsFor(rules.length);
  const where = (pred: (r: CompiledRule) => boolean) => bitsetOf(words, rules.filter(pred).map((r) => r.verdict.index));
  const v4 = new PrefixIndex(32);
  const v6 = new PrefixIndex(128);
  const portEntries: { lo: number; hi: number; rule: number }[] = [];
  const byUsers = new Map<string, number[]>();
  const byGroups = new Map<string, number[]>();
  const userNeg = new Map<string, number[]>();
  const exactRules = new Map<number, number[]>();
  const wildRules = new Map<number, number[]>();
  const catRules: number[][] = Array.from({ length: catIds.size }, () => []);
  const push = <K>(m: Map<K, number[]>, k: K, v: number) => {
    const l = m.get(k);
    if (l === undefined) m.set(k, [v]);
    else if (l[l.length - 1] !== v) l.push(v);
  };

  for (const r of rules) {
    const i = r.verdict.index;
    for (const c of r.dst ?? []) (c.family === 4 ? v4 : v6).insert(c, i);
    for (const [lo, hi] of r.ports ?? []) portEntries.push({ lo, hi, rule: i });
    for (const u of r.users ?? []) push(byUsers, u, i);
    for (const g of r.groups ?? []) for (const u of groups[g]) push(byGroups, u, i);
    for (const u of r.notUsers ?? []) push(userNeg, u, i);
    for (const g of r.notGroups ?? []) for (const u of groups[g]) push(userNeg, u, i);
    for (const h of r.hosts ?? []) push(h.wildcard ? wildRules : exactRules, domains.add(h.domain), i);
    for (const c of r.categories ?? []) catRules[catIds.get(c) as number].push(i);
  }
  // Host patterns may have added nodes after the categories: pad the per-node table.
  while (nodeCat.length < domains.size) nodeCat.push(-1);
  const noDst = where((r) => r.dst === null);
  v4.freeze(words, noDst);
  v6.freeze(words, noDst);
  const noName = where((r) => r.hosts === null && r.categories === null);
  const noHosts = where((r) => r.hosts === null);
  const noCats = where((r) => r.categories === null);

  return {
    words,
    tcp: where((r) => r.protocol === 'any' || r.protocol === 'tcp'),
    udp: where((r) => r.protocol === 'any' || r.protocol === 'udp'),
    icmp: where((r) => r.protocol === 'any' || r.protocol === 'icmp'),
    noUsers: where((r) => r.users === null),
    noGroups: where((r) => r.groups === null),
    byUsers,
    byGroups,
    userNeg,
    noPorts: where((r) => r.ports === null),
    ports: new PortIndex(portEntries, words),
    noDst,
    v4,
    v6,
    noName,
    noHosts,
    noCats,
    names: new NameIndex(domains, nodeCat, nodeMoreCats, catRules, exactRules, wildRules, words, noHosts, noCats),
    catNames: [...catIds.keys()],
    pinnedCat: catIds.get(PINNED_APPS_CATEGORY) ?? -1,
  };
}
