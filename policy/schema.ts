// The policy keys of sightline.yaml: `groups`, `policy.categories`,
// `policy.rules` and `routing.exclude`. vpn/config/schema.ts mounts these
// schemas; the messages complete the loader's "expected …, found …" lines.
import { z } from 'zod';
import { IpCidr } from '../netstack/wire';
import { parseHostPattern } from './domains';
import { SHIPPED_CATEGORY_NAMES } from './defaults';

export const ACTIONS = ['inspect', 'bypass', 'allow', 'block'] as const;
export type Action = (typeof ACTIONS)[number];
export const RULE_PROTOCOLS = ['tcp', 'udp', 'icmp', 'any'] as const;
export type RuleProtocol = (typeof RULE_PROTOCOLS)[number];

/** The id of the implicit last rule, taken when no rule matches; admins cannot use it. */
export const NO_MATCH_ID = 'no-match';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const NAME_TEXT = 'letters, digits and . _ : - (1-64, starting with a letter or digit)';

const ruleId = z.string().regex(NAME_RE, `a rule id of ${NAME_TEXT}`);
const userName = z.string().min(1).max(64);

/** "10.20.0.0/16", "fd00:20::/48"; a bare address is a /32 or /128. */
export const prefix = z.string().superRefine((s, ctx) => {
  let c: IpCidr;
  try {
    c = IpCidr.parse(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'an IPv4 or IPv6 prefix like 10.20.0.0/16 or fd00:20::/48' });
    return;
  }
  const net = c.network;
  // 10.20.1.0/16 is most likely a typo for either /24 or 10.20.0.0: refuse to guess.
  if (!net.equals(c.address)) {
    ctx.addIssue({ code: 'custom', message: `a prefix without host bits (${net.toString()}/${c.prefixLength}, or a longer prefix length)` });
  }
});

/** A port range "lo-hi" as written; null when malformed. */
export function parsePortRange(v: number | string): [number, number] | null {
  if (typeof v === 'number') return Number.isInteger(v) ? [v, v] : null;
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(v) ?? /^\s*(\d{1,5})\s*$/.exec(v);
  if (!m) return null;
  const lo = Number(m[1]);
  return [lo, m[2] === undefined ? lo : Number(m[2])];
}

const portEntry = z
  .custom<number | string>((v) => typeof v === 'number' || typeof v === 'string', { message: 'a port number or a range like "8000-8100"' })
  .superRefine((v, ctx) => {
    const r = parsePortRange(v);
    if (r === null) {
      ctx.addIssue({ code: 'custom', message: 'a port number or a range like "8000-8100"' });
    } else if (r[0] < 1 || r[1] > 65535) {
      ctx.addIssue({ code: 'custom', message: 'ports between 1 and 65535' });
    } else if (r[0] > r[1]) {
      ctx.addIssue({ code: 'custom', message: `a range from low to high ("${r[1]}-${r[0]}")` });
    }
  });

const hostPattern = z.string().refine((s) => parseHostPattern(s) !== null, {
  message: 'a host name like intranet.example.com, or a wildcard like *.example.org (the "*." only in front)',
});

const list = <T extends z.ZodType>(item: T) => z.array(item).min(1).optional();

export const ruleSchema = z
  .object({
    id: ruleId,
    action: z.enum(ACTIONS),
    dst: list(prefix),
    ports: list(portEntry),
    protocol: z.enum(RULE_PROTOCOLS).default('any'),
    users: list(userName),
    groups: list(z.string()),
    hosts: list(hostPattern),
    categories: list(z.string()),
    notUsers: list(userName),
    notGroups: list(z.string()),
  })
  .strict();

export type RuleConfig = z.input<typeof ruleSchema>;

/** Checks the names that are keys of a record (zod's own message for a bad key names neither). */
const namedRecord = <T extends z.ZodType>(what: string, value: T) =>
  z.record(z.string(), value).superRefine((rec, ctx) => {
    for (const key of Object.keys(rec)) {
      if (!NAME_RE.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `a ${what} name of ${NAME_TEXT}`, params: { found: key } });
    }
  });

export const groupsSchema = namedRecord('group', z.array(userName)).default({});

export const policySchema = z
  .object({
    categories: namedRecord('category', z.string().min(1)).default({}),
    rules: z.array(ruleSchema).optional(),
  })
  .strict()
  .prefault({});

export const routingSchema = z
  .object({
    exclude: z.array(prefix).default([]),
  })
  .strict()
  .prefault({});

/** The part of the whole config the policy is compiled from. */
export interface PolicySource {
  groups: Record<string, string[]>;
  policy: { categories: Record<string, string>; rules?: RuleConfig[] };
  tls: { inspectPorts: number[] };
}

interface Issue {
  path: (string | number)[];
  message: string;
}

/**
 * Checks across keys: every group and category a rule names exists, rule ids
 * are unique, and ports are not asked of ICMP. Mounted as a superRefine on
 * the whole config (it needs `groups` and `policy` together).
 */
export function policyReferenceIssues(cfg: Pick<PolicySource, 'groups' | 'policy'>): Issue[] {
  const issues: Issue[] = [];
  const groups = Object.keys(cfg.groups);
  const categories = [...new Set([...SHIPPED_CATEGORY_NAMES, ...Object.keys(cfg.policy.categories)])];
  const seen = new Map<string, number>();
  (cfg.policy.rules ?? []).forEach((rule, i) => {
    const at = (...rest: (string | number)[]) => ['policy', 'rules', i, ...rest];
    const first = seen.get(rule.id);
    if (first !== undefined) issues.push({ path: at('id'), message: `a rule id not used before (policy.rules.${first} already has it)` });
    else seen.set(rule.id, i);
    if (rule.id === NO_MATCH_ID) issues.push({ path: at('id'), message: `a rule id other than "${NO_MATCH_ID}" (reserved for flows no rule matches)` });
    for (const key of ['groups', 'notGroups'] as const) {
      (rule[key] ?? []).forEach((g, j) => {
        if (!groups.includes(g)) issues.push({ path: at(key, j), message: `a group defined under "groups" (${known(groups)})` });
      });
    }
    (rule.categories ?? []).forEach((c, j) => {
      if (!categories.includes(c)) issues.push({ path: at('categories', j), message: `a category defined under policy.categories or shipped (${known(categories)})` });
    });
    if (rule.protocol === 'icmp' && rule.ports !== undefined) {
      issues.push({ path: at('ports'), message: 'no ports on a rule with protocol icmp (ICMP has no ports; use protocol tcp, udp or any)' });
    }
  });
  return issues;
}

function known(names: string[]): string {
  return names.length === 0 ? 'none is defined' : `known: ${names.join(', ')}`;
}

/** zod hook for policyReferenceIssues. */
export function refinePolicyReferences(cfg: Pick<PolicySource, 'groups' | 'policy'>, ctx: z.RefinementCtx): void {
  for (const issue of policyReferenceIssues(cfg)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
}
