// What the employee portal says is inspected and what is not, in plain words,
// read from the running policy for the user asking: the bypass and allow
// rules that apply to them and name what they exempt (categories, hosts,
// destinations, inspected ports), in rule order. Computed per page, so a
// reload of the admin's rules shows on the next visit.
//
// A rule that exempts by nothing it names (the default `allow-rest`, an
// allow by user alone) is left out: after the inspect rules it only covers
// ports that are not inspected, which the page states on its own. A bypass
// by name holds only where the destination proves the name (README, "How the
// policy applies"); the page names what the rules intend.
import type { CategoryInfo, CompiledRule, Policy } from '../../policy';
import { checkRule, PINNED_APPS_CATEGORY } from '../../policy';
import type { Config } from '../config';

export interface InspectionScope {
  /** TCP ports whose TLS traffic is decrypted and checked. */
  inspectedPorts: number[];
  /** What is never decrypted for this user, in plain words, from the policy's rules. */
  notDecrypted: string[];
  /** Sites on the shipped list of apps that pin their certificates (passed through when they would be inspected). */
  pinnedListed: number;
  /** Whether apps that pin their certificates are passed through once learned (tls.pinning.mode). */
  pinnedAppsBypassed: boolean;
}

/** The shipped categories in the words of their lists (policy/categories/*.txt). */
const SHIPPED_WORDS: Record<string, string> = {
  'privacy-finance': 'Finance sites: banks, brokers and payment providers',
  'privacy-health': 'Health sites: health insurers, patient portals, telehealth and lab results',
  [PINNED_APPS_CATEGORY]: 'Apps that pin their certificates (the shipped list)',
};
/** Hosts and prefixes named per item; the rest is counted. */
const MAX_NAMED = 8;
const USER_FIELDS: ReadonlySet<string> = new Set(['users', 'groups', 'notUsers/notGroups']);

export function inspectionScope(config: Config, policy: Policy, user: string): InspectionScope {
  const inspected = config.tls.inspectPorts;
  const items: string[] = [];
  for (const rule of policy.rules) {
    const { action } = rule.verdict;
    if ((action !== 'bypass' && action !== 'allow') || rule.protocol === 'udp' || rule.protocol === 'icmp' || !appliesTo(policy, rule, user)) continue;
    for (const item of exemptions(policy, rule, inspected)) if (!items.includes(item)) items.push(item);
  }
  const pinned = policy.categories.find((c) => c.name === PINNED_APPS_CATEGORY)?.domains ?? 0;
  return { inspectedPorts: [...inspected], notDecrypted: items, pinnedListed: pinned, pinnedAppsBypassed: config.tls.pinning.mode !== 'off' };
}

/** Whether the rule's users, groups and their negations let it match this user (the matching of `policy explain`). */
function appliesTo(policy: Policy, rule: CompiledRule, user: string): boolean {
  const q = { user, protocol: 'tcp' as const, dst: new Uint8Array(4), dstPort: 0, host: null };
  return checkRule(policy, rule, q).every((c) => !USER_FIELDS.has(c.field) || c.matched);
}

/** What one rule exempts, one item per category, and one for its hosts or its destinations. */
function exemptions(policy: Policy, rule: CompiledRule, inspected: readonly number[]): string[] {
  const where = portsText(rule, inspected);
  if (where === null) return [];
  const out = (rule.categories ?? []).map((name) => categoryWords(policy.categories.find((c) => c.name === name), name) + where);
  if (rule.hosts !== null) out.push(`The sites ${named(rule.hosts.map((h) => (h.wildcard ? `every site under ${h.domain}` : h.domain)))}${where}`);
  if (rule.dst !== null && out.length === 0) out.push(`Connections to ${named(rule.dst.map(String))}${where}`);
  if (out.length === 0 && rule.ports !== null) out.push(`Encrypted traffic${where}`);
  return out;
}

/**
 * " on port 443" when the rule names inspected ports, "" when it names no
 * ports, null when it names only ports that are not inspected (nothing there
 * is decrypted anyway).
 */
function portsText(rule: CompiledRule, inspected: readonly number[]): string | null {
  if (rule.ports === null) return '';
  const ports = inspected.filter((p) => rule.ports?.some(([lo, hi]) => lo <= p && p <= hi));
  if (ports.length === 0) return null;
  return ` on port${ports.length > 1 ? 's' : ''} ${ports.join(', ')}`;
}

function categoryWords(info: CategoryInfo | undefined, name: string): string {
  if (info?.shipped) return SHIPPED_WORDS[name] ?? `Sites in the list "${name}"`;
  return `Sites in the company's list "${name}"${info ? ` (${info.domains} ${info.domains === 1 ? 'site' : 'sites'})` : ''}`;
}

function named(items: string[]): string {
  const shown = items.slice(0, MAX_NAMED).join(', ');
  return items.length > MAX_NAMED ? `${shown} and ${items.length - MAX_NAMED} more` : shown;
}
