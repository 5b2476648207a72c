// The indexed decision (bitsets, tries, caches) against the plain definition:
// the first rule whose every field matches, checked field by field as
// `policy explain` checks them. Seeded random policies dense enough that most
// fields match often, and long enough (hundreds of rules) to cross many
// bitset words.
import { checkRule, compilePolicy, explain } from '../../../policy';
import { makeWorkload } from '../../../scripts/bench/policy_workload';

function firstMatchByDefinition(p: ReturnType<typeof compilePolicy>, q: Parameters<typeof checkRule>[2]): string {
  const r = p.rules.find((rule) => checkRule(p, rule, q).every((c) => c.matched));
  return r?.verdict.rule ?? 'none';
}

describe.each([1, 2, 3])('indexed decisions equal first-match by definition (seed %i)', (seed) => {
  const w = makeWorkload({ rules: 400, categories: 4, domainsPerCategory: 50, users: 12, groups: 4, v4UniverseBits: 20, queries: 3000, seed });
  const p = compilePolicy(w.source, { read: (f) => w.files.get(f) ?? '', shipped: {} });

  test('every query gets the rule the definition gives', () => {
    const wrong = w.queries.filter((q) => p.decide(q).rule !== firstMatchByDefinition(p, q));
    expect(wrong).toEqual([]);
  });

  test('the workload exercises many rules, not only the catch-all', () => {
    const decided = new Set(w.queries.map((q) => p.decide(q).rule));
    expect(decided.size).toBeGreaterThan(50);
  });

  test('the workload has queries meeting both conditions of rules that set users and groups, or hosts and categories', () => {
    const meets = (pred: (r: (typeof p.rules)[number]) => boolean) =>
      p.rules.filter(pred).some((r) => w.queries.some((q) => checkRule(p, r, q).every((c) => c.matched)));
    expect(meets((r) => r.users !== null && r.groups !== null)).toBe(true);
    expect(meets((r) => r.hosts !== null && r.categories !== null)).toBe(true);
  });

  test('deciding twice (cached bitsets) gives the same verdicts', () => {
    const first = w.queries.map((q) => p.decide(q).rule);
    expect(w.queries.map((q) => p.decide(q).rule)).toEqual(first);
  });

  test('the early verdict is the no-name verdict, and flagged whenever a name could change it', () => {
    for (const q of w.queries.slice(0, 500)) {
      const early = p.decideBeforeHost(q);
      expect(early.verdict).toBe(p.decide({ ...q, host: null }));
      if (q.host !== null && p.decide(q) !== early.verdict) expect(early.hostMayMatter).toBe(true);
    }
  });

  test('explain reports the verdict decide gives, with every field of that rule matched', () => {
    for (const q of w.queries.slice(0, 300)) {
      const e = explain(p, q);
      expect(e.rule).toBe(p.decide(q).rule);
      expect(e.matched.every((c) => c.matched)).toBe(true);
      expect(e.skipped.length).toBe(Math.min(50, e.index));
    }
  });
});
