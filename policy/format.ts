// Text for people: the effective rules (`sightline policy show`) and an
// explanation (`sightline policy explain`). JSON output uses the objects.
import type { CompiledRule } from './compile';
import type { Explanation } from './explain';
import type { Policy } from './match';

/** Where a rule comes from, as a reader of sightline.yaml finds it. */
export function ruleOrigin(rule: CompiledRule): string {
  const { origin, index } = rule.verdict;
  if (origin === 'config') return `policy.rules.${index}`;
  if (origin === 'default') return `built-in default #${index}, as policy.rules is not set`;
  return 'implicit: no rule matched';
}

/** The fields a rule sets, in one line. */
export function describeRule(rule: CompiledRule): string {
  const parts: string[] = [];
  if (rule.protocol !== 'any') parts.push(`protocol ${rule.protocol}`);
  if (rule.dst) parts.push(`dst ${rule.dst.map(String).join(', ')}`);
  if (rule.ports) parts.push(rule.ports.length === 0 ? 'ports (none)' : `ports ${rule.ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(', ')}`);
  if (rule.users) parts.push(`users ${rule.users.join(', ')}`);
  if (rule.groups) parts.push(`groups ${rule.groups.join(', ')}`);
  if (rule.notUsers) parts.push(`notUsers ${rule.notUsers.join(', ')}`);
  if (rule.notGroups) parts.push(`notGroups ${rule.notGroups.join(', ')}`);
  if (rule.hosts) parts.push(`hosts ${rule.hosts.map((h) => `${h.wildcard ? '*.' : ''}${h.domain}`).join(', ')}`);
  if (rule.categories) parts.push(`categories ${rule.categories.join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : 'every flow';
}

export function formatPolicy(policy: Policy, configSource: string | null): string {
  const out: string[] = [configSource ? `config: ${configSource}` : 'config: none (embedded defaults)', ''];
  out.push(policy.usesDefaults
    ? 'rules (built-in defaults, because policy.rules is not set; writing policy.rules replaces them all):'
    : 'rules (policy.rules, first match wins):');
  const rows = policy.rules.map((r) => [`${r.verdict.index}`, r.verdict.rule, r.verdict.action, describeRule(r), r.verdict.origin === 'config' ? '' : `[${r.verdict.origin}]`]);
  out.push(...table([['#', 'id', 'action', 'matches', ''], ...rows]));
  out.push('', 'categories:');
  const usedBy = (name: string) => policy.rules.filter((r) => r.categories?.includes(name)).map((r) => r.verdict.rule);
  out.push(...table([
    ['name', 'domains', 'source', 'used by', 'file'],
    ...policy.categories.map((c) => {
      const users = usedBy(c.name);
      const note = c.name === 'pinned-apps' ? 'TLS engine (pinned-listed)' : users.length > 0 ? users.join(', ') : '-';
      return [c.name, `${c.domains}`, c.shipped ? 'shipped' : 'admin', note, c.file];
    }),
  ]));
  const groups = Object.entries(policy.groups);
  out.push('', groups.length === 0 ? 'groups: none' : 'groups:');
  for (const [g, members] of groups) out.push(`  ${g}: ${members.length === 0 ? '(no members)' : members.join(', ')}`);
  return out.join('\n') + '\n';
}

export function formatExplanation(e: Explanation, rule: CompiledRule): string {
  const q = e.query;
  const groups = q.groups.length > 0 ? ` (groups: ${q.groups.join(', ')})` : ' (no groups)';
  const dst = q.protocol === 'icmp' ? q.dst : `${q.dst.includes(':') ? `[${q.dst}]` : q.dst}:${q.dstPort}`;
  const out = [
    `flow     ${q.user}${groups}, ${q.protocol} to ${dst}, ${q.host === null ? 'no SNI/Host' : `name ${q.host}`}`,
    `action   ${e.action}`,
    `rule     ${e.rule} (${ruleOrigin(rule)})`,
  ];
  if (e.matched.length === 0) out.push(`matched  every flow (the rule sets no field)`);
  e.matched.forEach((m, i) => out.push(`${i === 0 ? 'matched' : ''}`.padEnd(9) + `${m.field}: ${m.detail}`));
  if (e.skippedTotal > 0) {
    out.push(`passed over ${e.skippedTotal} earlier rule${e.skippedTotal === 1 ? '' : 's'}:`);
    for (const s of e.skipped) out.push(`  ${s.rule}: ${s.field}: ${s.detail}`);
    if (e.skippedTotal > e.skipped.length) out.push(`  … and ${e.skippedTotal - e.skipped.length} more`);
  }
  if (e.hostMayMatter) out.push('note     with an SNI/Host an earlier rule with hosts or categories could match: try --sni NAME');
  if (e.pinnedListed) out.push('note     the name is on the shipped pinned-apps list: the TLS engine passes it through undecrypted (reason pinned-listed)');
  return out.join('\n') + '\n';
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}`);
}
