// A synthetic but plausible policy and the flows it decides: rules that mix
// destination prefixes, ports, protocols, users and groups, negations, host
// patterns and categories, ending with the defaults' catch-all. Seeded, so
// the benchmark and the cross-check test see the same shapes every run.
// Category files live in memory (compile reads them through `read`).
import { IpAddress } from '../../netstack/wire';
import type { FlowProtocol, FlowQuery, PolicySource, RuleConfig } from '../../policy';
import { seededRandom } from '../lab/prng';

export interface WorkloadShape {
  rules: number;
  categories: number;
  domainsPerCategory: number;
  users: number;
  groups: number;
  /** Rule prefixes are drawn inside 10.0.0.0/this (smaller: more overlap). */
  v4UniverseBits: number;
  queries: number;
  seed: number;
}

export interface Workload {
  source: PolicySource;
  /** Category file path -> text. */
  files: Map<string, string>;
  queries: FlowQuery[];
}

const TLDS = ['com', 'net', 'org', 'de', 'co.uk', 'io'];
const PORTS = [22, 25, 53, 80, 123, 443, 993, 3389, 5432, 8080, 8443];

export function makeWorkload(shape: WorkloadShape): Workload {
  const rnd = seededRandom(shape.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const some = <T>(xs: readonly T[], max: number): T[] => [...new Set(Array.from({ length: 1 + int(max) }, () => pick(xs)))];

  const users = Array.from({ length: shape.users }, (_, i) => `user${i}`);
  const groupNames = Array.from({ length: shape.groups }, (_, i) => `group${i}`);
  const groups = Object.fromEntries(groupNames.map((g) => [g, some(users, Math.max(1, shape.users / shape.groups) * 2)]));

  const files = new Map<string, string>();
  const categoryDomains: string[][] = [];
  const categories: Record<string, string> = {};
  for (let c = 0; c < shape.categories; c++) {
    const domains = Array.from({ length: shape.domainsPerCategory }, () => `${word(rnd)}${int(1000)}.${pick(TLDS)}`);
    categoryDomains.push(domains);
    const path = `/mem/cat${c}.txt`;
    files.set(path, `# synthetic category ${c}\n${domains.join('\n')}\n`);
    categories[`cat${c}`] = path;
  }
  const hostPool = Array.from({ length: Math.max(16, shape.rules / 4) }, () => `${word(rnd)}.${word(rnd)}${int(100)}.${pick(TLDS)}`);

  // Prefixes inside 10.0.0.0/8, with the first v4UniverseBits bits fixed at 10.0.0.0 so they overlap.
  const v4Prefix = (): string => {
    const len = shape.v4UniverseBits + int(32 - shape.v4UniverseBits + 1);
    const host = ((10 << 24) | int(2 ** (32 - shape.v4UniverseBits))) >>> 0;
    return `${mask(host, len)}/${len}`;
  };
  const v6Prefix = (): string => `fd00:${int(16).toString(16)}:${int(16).toString(16)}::/${pick([32, 48, 64])}`;

  const rules: RuleConfig[] = [];
  // Every rule is narrow in at least two ways, as admins write them: a
  // network (prefixes), a service (ports), people (users/groups) or names.
  const who = (r: RuleConfig) => {
    const w = rnd();
    if (w < 0.55) r.users = some(users, 3);
    else if (w < 0.9) r.groups = some(groupNames, 2);
    else {
      // Both fields: listed users who are members (a match) or not (none).
      r.groups = some(groupNames, 2);
      r.users = some([...r.groups.flatMap((g) => groups[g]), pick(users)], 3);
    }
  };
  const wildOrExact = (h: string): string => (rnd() < 0.5 && h.includes('.') ? `*.${h.slice(h.indexOf('.') + 1)}` : h);
  const names = (r: RuleConfig) => {
    const n = rnd();
    if (shape.categories > 0 && n < 0.2) r.categories = some(Object.keys(categories), 2);
    else if (shape.categories > 0 && n < 0.3) {
      // Both fields: host patterns over the categories' own domains, and one from elsewhere.
      const cats = some(Object.keys(categories), 2);
      r.categories = cats;
      const listed = some(cats.flatMap((c) => categoryDomains[Number(c.slice(3))]), 2).map((d) => (rnd() < 0.5 ? `*.${d}` : d));
      r.hosts = [...listed, wildOrExact(pick(hostPool))];
    } else r.hosts = some(hostPool, 3).map(wildOrExact);
  };
  const ports = (r: RuleConfig) => {
    r.ports = some([...PORTS.map(String), `${1000 + int(1000)}-${2000 + int(8000)}`], 2);
  };
  for (let i = 0; i < shape.rules - 1; i++) {
    const r: RuleConfig = { id: `r${i}`, action: pick(['inspect', 'bypass', 'allow', 'block'] as const) };
    const kind = rnd();
    if (kind < 0.4) {
      r.dst = some([v4Prefix(), v4Prefix(), rnd() < 0.2 ? v6Prefix() : v4Prefix()], 3);
      if (rnd() < 0.6) ports(r);
      if (rnd() < 0.5 || r.ports === undefined) who(r);
    } else if (kind < 0.6) {
      who(r);
      if (rnd() < 0.5) r.dst = [v4Prefix()];
      else ports(r);
    } else if (kind < 0.9) {
      names(r);
      if (rnd() < 0.8) r.ports = ['443'];
      if (rnd() < 0.3) who(r);
    } else {
      ports(r);
      if (rnd() < 0.5) r.dst = [v4Prefix()];
      else who(r);
    }
    if (r.ports === undefined && rnd() < 0.1) r.protocol = 'icmp';
    else if (rnd() < 0.2) r.protocol = pick(['tcp', 'udp'] as const);
    if (rnd() < 0.05) r.notUsers = some(users, 2);
    if (rnd() < 0.05) r.notGroups = some(groupNames, 1);
    rules.push(r);
  }
  rules.push({ id: 'allow-rest', action: 'allow' });

  const queries: FlowQuery[] = [];
  const rulePrefixes = rules.flatMap((r) => r.dst ?? []);
  for (let i = 0; i < shape.queries; i++) {
    const protocol: FlowProtocol = rnd() < 0.7 ? 'tcp' : rnd() < 0.85 ? 'udp' : 'icmp';
    const dst = rulePrefixes.length > 0 && rnd() < 0.8 ? addressIn(pick(rulePrefixes), rnd) : `10.${int(256)}.${int(256)}.${int(256)}`;
    const h = rnd();
    const host = h < 0.4 || protocol === 'icmp' ? null
      : h < 0.7 && categoryDomains.length > 0 ? `${rnd() < 0.5 ? 'www.' : ''}${pick(pick(categoryDomains))}`
        : h < 0.9 ? `${rnd() < 0.5 ? 'api.' : ''}${pick(hostPool)}` : `${word(rnd)}.example`;
    queries.push({
      user: rnd() < 0.95 ? pick(users) : 'stranger',
      protocol,
      dst: IpAddress.parse(dst).bytes,
      dstPort: protocol === 'icmp' ? 0 : rnd() < 0.8 ? pick(PORTS) : 1 + int(65535),
      host,
    });
  }
  return { source: { groups, policy: { categories, rules }, tls: { inspectPorts: [443] } }, files, queries };
}

function word(rnd: () => number): string {
  const n = 3 + Math.floor(rnd() * 6);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(rnd() * 26));
  return s;
}

function mask(v: number, len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const a = (v & m) >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** A random address inside a prefix (IPv4 or IPv6). */
function addressIn(prefix: string, rnd: () => number): string {
  const [addr, lenText] = prefix.split('/');
  const len = Number(lenText);
  const bytes = Buffer.from(IpAddress.parse(addr).bytes);
  for (let bit = len; bit < bytes.length * 8; bit++) if (rnd() < 0.5) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return IpAddress.fromBytes(bytes).toString();
}
