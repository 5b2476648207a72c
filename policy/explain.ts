// Why a flow got its verdict. The verdict itself always comes from
// Policy.decide, the function the data path calls, so an explanation and a
// real flow cannot disagree; this file only describes, field by field, why
// the deciding rule matched and why each earlier rule did not.
import { IpAddress } from '../netstack/wire';
import type { CompiledRule, RuleOrigin } from './compile';
import { queryHost } from './domains';
import { embedsIpv4, type FlowQuery, type Policy } from './match';
import type { Action } from './schema';

/** A rule's conditions as explained: each set field is one (users and groups, hosts and categories each on their own). */
export type RuleField = 'protocol' | 'dst' | 'ports' | 'users' | 'groups' | 'notUsers/notGroups' | 'hosts' | 'categories';

export interface FieldCheck {
  field: RuleField;
  matched: boolean;
  detail: string;
}

export interface SkippedRule {
  rule: string;
  index: number;
  /** The first field that did not match. */
  field: RuleField;
  detail: string;
}

export interface Explanation {
  query: { user: string; groups: string[]; protocol: FlowQuery['protocol']; dst: string; dstPort: number; host: string | null };
  action: Action;
  rule: string;
  index: number;
  origin: RuleOrigin;
  /** Every field the deciding rule sets (all matched; none means it matches every flow). */
  matched: FieldCheck[];
  /** Earlier rules and why each was passed over (the first MAX_SKIPPED). */
  skipped: SkippedRule[];
  skippedTotal: number;
  /** Without a name: a rule with hosts/categories before this one could match once the SNI/Host is known. */
  hostMayMatter: boolean;
  /** The name is on the shipped pinned-apps list: the TLS engine bypasses it (reason `pinned-listed`). */
  pinnedListed: boolean;
}

const MAX_SKIPPED = 50;
const MAX_LISTED = 6;

export function explain(policy: Policy, q: FlowQuery): Explanation {
  const verdict = policy.decide(q);
  const host = queryHost(q.host);
  const skipped: SkippedRule[] = [];
  for (let i = 0; i < verdict.index; i++) {
    const failed = checkRule(policy, policy.rules[i], q).find((c) => !c.matched);
    // Cannot happen while decide and checkRule agree (the tests hold them together); shown rather than hidden.
    const why = failed ?? { field: 'protocol' as const, detail: 'matches by field, but the decision passed it over: please report this' };
    if (skipped.length < MAX_SKIPPED) skipped.push({ rule: policy.rules[i].verdict.rule, index: i, field: why.field, detail: why.detail });
  }
  return {
    query: { user: q.user, groups: groupsOf(policy, q.user), protocol: q.protocol, dst: displayAddress(q.dst), dstPort: q.dstPort, host },
    action: verdict.action,
    rule: verdict.rule,
    index: verdict.index,
    origin: verdict.origin,
    matched: checkRule(policy, policy.rules[verdict.index], q),
    skipped,
    skippedTotal: verdict.index,
    hostMayMatter: host === null && policy.decideBeforeHost(q).hostMayMatter,
    pinnedListed: policy.pinnedListed(host),
  };
}

/** Each field the rule sets, checked against the query, in the order a reader scans a rule. */
export function checkRule(policy: Policy, rule: CompiledRule, q: FlowQuery): FieldCheck[] {
  const out: FieldCheck[] = [];
  const add = (field: RuleField, matched: boolean, detail: string) => out.push({ field, matched, detail });
  if (rule.protocol !== 'any') add('protocol', rule.protocol === q.protocol, rule.protocol === q.protocol ? q.protocol : `${q.protocol}, the rule is for ${rule.protocol}`);
  if (rule.dst !== null) {
    const addr = matchedAddress(q.dst);
    const hit = rule.dst.find((c) => c.contains(addr));
    add('dst', hit !== undefined, hit ? `${hit.toString()} contains ${addr.toString()}` : `${addr.toString()} is in none of ${listed(rule.dst.map(String))}`);
  }
  if (rule.ports !== null) {
    const hit = q.protocol === 'icmp' ? undefined : rule.ports.find(([lo, hi]) => lo <= q.dstPort && q.dstPort <= hi);
    const text = rule.ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`));
    if (q.protocol === 'icmp') add('ports', false, 'ICMP has no port');
    else add('ports', hit !== undefined, hit ? `${text[rule.ports.indexOf(hit)]} contains ${q.dstPort}` : `${q.dstPort} is in none of ${listed(text)}`);
  }
  if (rule.users !== null) {
    const hit = rule.users.includes(q.user);
    add('users', hit, hit ? `${q.user} is listed in users` : `${q.user} is not in users ${listed(rule.users)}`);
  }
  if (rule.groups !== null) {
    const via = rule.groups.filter((g) => policy.groups[g]?.includes(q.user));
    add('groups', via.length > 0, via.length > 0 ? `${q.user} is a member of group ${via[0]}` : `${q.user} is a member of none of groups ${listed(rule.groups)}`);
  }
  if (rule.notUsers !== null || rule.notGroups !== null) {
    const direct = rule.notUsers?.includes(q.user) ?? false;
    const via = (rule.notGroups ?? []).filter((g) => policy.groups[g]?.includes(q.user));
    const detail = direct ? `${q.user} is listed in notUsers` : via.length > 0 ? `${q.user} is a member of notGroups ${via[0]}` : `${q.user} is in neither notUsers nor notGroups`;
    add('notUsers/notGroups', !direct && via.length === 0, detail);
  }
  const host = queryHost(q.host);
  const noName = 'the flow has no SNI/Host, and a rule with hosts or categories needs one';
  if (rule.hosts !== null) {
    const pattern = host === null ? undefined : rule.hosts.find((p) => (p.wildcard ? host.endsWith(`.${p.domain}`) : host === p.domain));
    const detail = host === null ? noName : pattern ? `${host} matches host ${pattern.wildcard ? '*.' : ''}${pattern.domain}` : `${host} matches none of hosts ${listed(rule.hosts.map((p) => `${p.wildcard ? '*.' : ''}${p.domain}`))}`;
    add('hosts', pattern !== undefined, detail);
  }
  if (rule.categories !== null) {
    const cat = host === null ? undefined : policy.categoriesOf(host).find(([name]) => rule.categories?.includes(name));
    const detail = host === null ? noName : cat ? `${host} is in category ${cat[0]} (listed as ${cat[1]})` : `${host} is in none of categories ${listed(rule.categories)}`;
    add('categories', cat !== undefined, detail);
  }
  return out;
}

function groupsOf(policy: Policy, user: string): string[] {
  return Object.keys(policy.groups).filter((g) => policy.groups[g].includes(user));
}

/** The address the decision matched: an IPv6 form of an IPv4 address (embedsIpv4) as the IPv4 one. */
function matchedAddress(dst: Uint8Array): IpAddress {
  return IpAddress.fromBytes(Buffer.from(embedsIpv4(dst) ? dst.subarray(12) : dst));
}

function displayAddress(dst: Uint8Array): string {
  return IpAddress.fromBytes(Buffer.from(dst)).toString();
}

function listed(items: readonly string[]): string {
  if (items.length === 0) return '[]';
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `[${shown}, … ${items.length - MAX_LISTED} more]` : `[${shown}]`;
}
