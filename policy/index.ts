// Public surface of the policy engine: the config schema pieces, compile,
// the decision (the one function the data path and `policy explain` call),
// explanations, hot reload, and routing.exclude as AllowedIPs.
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
export { describeRule, formatExplanation, formatPolicy, ruleOrigin } from './format';
export type { Explanation, FieldCheck, RuleField, SkippedRule } from './explain';
export { PolicyHolder } from './reload';
export type { ReloadResult } from './reload';
export { allowedIpsFor } from './routing';
