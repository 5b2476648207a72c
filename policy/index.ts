// Public surface of the policy engine: the config schema pieces, compile,
// the decision (the one function the data path and `policy explain` call),
// explanations, hot reload, and routing.exclude as AllowedIPs.
//
// How the data path uses it (sans-IO: no sockets, no timers, no logging;
// vpn/flow_policy is that wiring in the concentrator):
//   holder = new PolicyHolder(compilePolicy(config))
//   new TCP flow (SYN), before any byte:
//     { verdict, hostMayMatter } = holder.current.decideBeforeHost(query with host null)
//     hostMayMatter false: verdict is final (block: RST / ICMP admin-prohibited at once)
//     hostMayMatter true:  read the ClientHello (inspected ports) or HTTP Host, then
//   once the name is read: verdict = policy.decide(query with host = SNI or Host)
//     (use the same Policy object as at the SYN: a reload between must not mix policies)
//   first UDP datagram / ICMP packet: policy.decide(query, host null; dstPort 0 for ICMP)
//   verdict.action inspect and policy.pinnedListed(sni): bypass, reason `pinned-listed`
//   flow records carry verdict.rule as `rule`
//   SIGHUP / file change: holder.reload(() => loadConfigFile(path).config); on
//     { ok: false, error } log error (it names file and line); the old policy stays
export {
  ACTIONS, NO_MATCH_ID, RULE_PROTOCOLS, groupsSchema, policySchema, routingSchema, ruleSchema, policyReferenceIssues, refinePolicyReferences,
} from './schema';
export type { Action, PolicySource, RuleConfig, RuleProtocol } from './schema';
export { PolicyError, checkCategoryFiles, parseCategoryText, readCategoryFile } from './category_file';
export { PINNED_APPS_CATEGORY, SHIPPED_CATEGORY_NAMES, defaultRules, shippedCategoriesDir } from './defaults';
export { normalizeDomain } from './domains';
export { compilePolicy } from './compile';
export type { CategoryInfo, CompileOptions, CompiledRule, RuleOrigin, Verdict } from './compile';
export { Policy } from './match';
export type { EarlyDecision, FlowProtocol, FlowQuery } from './match';
export { checkRule, explain } from './explain';
export type { Explanation, FieldCheck, RuleField, SkippedRule } from './explain';
export { describeRule, formatExplanation, formatPolicy, ruleOrigin } from './format';
export { PolicyHolder } from './reload';
export type { ReloadResult } from './reload';
export { allowedIpsFor } from './routing';
