// docs/log-schema.json is the published contract of the per-user logs. Every
// record type the code writes is generated here through the real writers,
// wired as the concentrator wires them (the inspection engine under the
// policy hook against loopback origins, the TCP stack with the egress guard,
// policy and buffer budgets, routed mode's packet split, the DNS forwarder,
// the session writer), and validates against it; every field the schema
// documents is written by some scenario; the schema's types, the CLI's
// (`sightline logs --type`) and the types named anywhere in the source are
// the same list, and its fixed value lists are the code's. An undocumented
// field or type fails here.
import Ajv2020 from 'ajv/dist/2020';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { PROTOCOL_GUESSES, UNDECRYPTED_REASONS, UPSTREAM_ERRORS } from '../../../../mitm';
import { EGRESS_REFUSALS } from '../../../../netstack';
import { IpCidr } from '../../../../netstack/wire';
import { ACTIONS, PolicyHolder } from '../../../../policy';
import { defaultConfig } from '../../../../vpn/config';
import { EgressBoundary } from '../../../../vpn/egress';
import { FlowPolicy } from '../../../../vpn/flow_policy';
import { parseTypes, RECORD_TYPES, UserLog, userLogFiles } from '../../../../vpn/logs';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';
import { makePki } from '../../mitm/engine_harness';
import { policyFrom, TempDir } from '../../policy/helpers';
import { engineRecords } from './schema_engine';
import { datapathRecords, LAB_ORIGIN, SERVER4, SERVER6 } from './schema_datapath';

jest.setTimeout(90_000);

const ROOT = join(__dirname, '..', '..', '..', '..');
interface Def { properties: Record<string, { enum?: string[]; anyOf?: Array<{ enum?: string[]; pattern?: string }> }> }
const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'log-schema.json'), 'utf8')) as { properties: { type: { enum: string[] } }; $defs: Record<string, Def & { enum?: string[]; anyOf?: Array<{ enum?: string[]; pattern?: string }> }> };
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);

/** The policy the scenarios run under (issue 9's rules; the shipped pinned-apps list applies as always). */
const RULES = `policy:
  categories:
    test-banks: banks.txt
  rules:
    - { id: lab-origin, action: allow, protocol: tcp, dst: [${LAB_ORIGIN}/32] }
    - { id: no-blocked-test, action: block, hosts: [blocked.test] }
    - { id: banks, action: bypass, categories: [test-banks] }
    - { id: test-net-closed, action: block, dst: [192.0.2.0/24, "2001:db8::/32"] }
    - { id: inspect-tcp, action: inspect, protocol: tcp }
`;

let records: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  const dataDir = tempDir('sightline-schema-');
  const userLog = new UserLog({ dataDir, deviceOf: (peer) => (peer === 'peer-key-alice' ? 'laptop' : undefined) });
  const dir = new TempDir();
  dir.write('banks.txt', '# the scenarios\' bank\nbank.test\n');
  const clock = { now: 0 };
  const policy = new FlowPolicy({ holder: new PolicyHolder(policyFrom(RULES, dir)), inspectPorts: [443], records: userLog, now: () => clock.now });
  const config = defaultConfig();
  const egress = new EgressBoundary({
    config: { ...config, egress: { ...config.egress, allow: [`${LAB_ORIGIN}/32`] } },
    tunnelAddresses: [SERVER4, SERVER6],
    tunnelPools: [IpCidr.parse('10.77.0.0/24'), IpCidr.parse('fd77::/64')],
    records: userLog,
    log: pino({ level: 'silent' }),
    readInterfaces: () => ({}),
    now: () => clock.now,
  });
  try {
    await engineRecords({ pki: makePki(), userLog, policy, egress });
    await datapathRecords({ userLog, policy, egress, clock });
  } finally {
    egress.stop();
    dir.cleanup();
    await userLog.close();
  }
  const users = readdirSync(userLog.dir).filter((n) => n.endsWith('.ndjson')).map((n) => n.slice(0, -'.ndjson'.length));
  records = users.flatMap((u) => userLogFiles(userLog.dir, u).flatMap((f) => readFileSync(f.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)));
});
afterAll(removeTempDirs);

const COMMON = new Set(['level', 'time', 'type', 'user', 'peer', 'device']);

test('every record written validates against docs/log-schema.json', () => {
  expect(records.length).toBeGreaterThan(50);
  const failures = records.flatMap((r) => (validate(r) ? [] : [{ record: r, errors: validate.errors }]));
  expect(failures).toEqual([]);
});

test('the scenarios wrote every record type', () => {
  const seen = new Set(records.map((r) => String(r.type)));
  expect(RECORD_TYPES.filter((t) => !seen.has(t))).toEqual([]);
});

/** Fields whose writers are exercised elsewhere (test/unit/mitm/http_log): WebSocket upgrades, HTTP/2 streams, a parser's error record. */
const WRITTEN_ELSEWHERE = ['http.upgraded', 'http.streamId', 'http.error'];

test('every field the schema documents was written by some scenario (no documented field is a phantom)', () => {
  const written = new Set(records.flatMap((r) => Object.keys(r).filter((k) => !COMMON.has(k)).map((k) => `${String(r.type)}.${k}`)));
  const documented = RECORD_TYPES.flatMap((t) => Object.keys(schema.$defs[t].properties).map((k) => `${t}.${k}`));
  expect(documented.filter((f) => !written.has(f) && !WRITTEN_ELSEWHERE.includes(f))).toEqual([]);
});

test('records of a flow carry the rule that decided it and its action', () => {
  const of = (type: string) => records.filter((r) => r.type === type);
  expect(of('flow')).toContainEqual(expect.objectContaining({ rule: 'lab-origin', action: 'allow' }));
  expect(of('http')).toContainEqual(expect.objectContaining({ rule: 'inspect-tcp', action: 'inspect' }));
  expect(of('tls_blocked')).toEqual([expect.objectContaining({ host: 'blocked.test', rule: 'no-blocked-test', action: 'block' })]);
  expect(of('tls_bypass')).toContainEqual(expect.objectContaining({ host: 'bank.test', reason: 'category', verified: 'probe', rule: 'banks', action: 'bypass' }));
  expect(of('policy').map((r) => [r.reason, r.proto])).toEqual(expect.arrayContaining([
    ['policy-block', 'tcp'], ['category', 'tcp'], ['mtls', 'tcp'], ['non-tls', 'tcp'], ['upstream-cert-error:incomplete_chain', 'tcp'],
    ['policy-block', 'udp'], ['policy-block', 'icmp'], ['policy-block', 'icmpv6'], ['policy-block', `ip_47`],
  ]));
  expect(of('egress_denied').map((r) => r.path)).toEqual(expect.arrayContaining(['tunnel', 'fetch']));
});

test("the schema's types are the CLI's types, and `sightline logs --type` takes each", () => {
  expect(schema.properties.type.enum).toEqual([...RECORD_TYPES]);
  expect([...parseTypes(RECORD_TYPES.join(','))]).toEqual([...RECORD_TYPES]);
});

test("the schema's fixed lists are the code's", () => {
  const enumOf = (def: string, field: string) => schema.$defs[def].properties[field].enum;
  expect(schema.$defs.ruleAction.enum).toEqual([...ACTIONS]);
  expect(schema.$defs.upstreamError.enum).toEqual([...UPSTREAM_ERRORS]);
  expect(enumOf('egress_denied', 'reason')).toEqual([...EGRESS_REFUSALS]);
  expect(enumOf('non_tls', 'guess')).toEqual([...PROTOCOL_GUESSES]);
  expect(enumOf('flow_end', 'guess')).toEqual([...PROTOCOL_GUESSES]);
  const [fixed, withSubReason] = schema.$defs.undecrypted.anyOf ?? [];
  expect(fixed.enum).toEqual(UNDECRYPTED_REASONS.filter((r) => r !== 'upstream-cert-error'));
  expect(withSubReason.pattern).toBe(`^upstream-cert-error:(${[...UPSTREAM_ERRORS, 'mint_failed'].join('|')})$`);
});

test('the README\'s per-user log table has one row per record type, naming each of its fields', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('Record types and their fields')).split('\n\n')[1];
  const rows = table.split('\n').slice(2).map((line) => line.split(' | '));
  const types = rows.map((cells) => cells[0].replace(/^\| `|`$/g, ''));
  expect(types.sort()).toEqual([...RECORD_TYPES].sort());
  const unnamed = rows.flatMap((cells) => {
    const type = cells[0].replace(/^\| `|`$/g, '');
    const named = new Set([...cells[2].matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]));
    return Object.keys(schema.$defs[type].properties).filter((f) => !named.has(f)).map((f) => `${type}.${f}`);
  });
  expect(unnamed).toEqual([]);
});

describe('the schema refuses', () => {
  const ok = { level: 'info', time: '2026-12-01T09:00:00.000Z', type: 'tls_blocked', user: 'a', peer: 'k', device: 'laptop', host: 'h', reason: 'policy', rule: 'r', action: 'block' };
  test('nothing of a valid record', () => expect(validate(ok)).toBe(true));
  test('an undocumented field', () => expect(validate({ ...ok, password: 'x' })).toBe(false));
  test('a missing field, common or of the type', () => {
    expect(validate({ ...ok, host: undefined })).toBe(false);
    expect(validate({ ...ok, device: undefined })).toBe(false);
    expect(validate({ ...ok, rule: undefined })).toBe(false);
  });
  test('an unknown type, and a value outside a fixed list', () => {
    expect(validate({ ...ok, type: 'tls_blockd' })).toBe(false);
    expect(validate({ ...ok, action: 'pass' })).toBe(false);
    expect(validate({ ...ok, reason: 'because' })).toBe(false);
  });
  test('a policy reason outside the fixed list, and one with an unknown sub-reason', () => {
    const policy = { ...ok, type: 'policy', reason: 'upstream-cert-error:expired', host: null, dst: '192.0.2.1', dstPort: 443, proto: 'tcp' };
    expect(validate(policy)).toBe(true);
    expect(validate({ ...policy, reason: 'upstream-cert-error:whatever' })).toBe(false);
    expect(validate({ ...policy, reason: 'finance sites are not decrypted' })).toBe(false);
  });
});

/** Every .ts file under the folders that hold the concentrator's code. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

test('the record types named anywhere in the source are exactly the schema\'s', () => {
  // How code writes a record: the engine's record('type', ...), a sink's write(user, peer, 'type', ...),
  // or an object the stack hands over whose interface (…Record) fixes its type.
  const patterns = [
    /\brecord\(\s*'([a-z_]+)'/g,
    /\.write\(\s*[\w.]+\s*,\s*[\w.]+\s*,\s*'([a-z_]+)'/g,
    /interface \w*Record\b[^{]*\{[^}]*?\btype: '([a-z_]+)'/g,
  ];
  const named = new Set<string>();
  for (const file of ['mitm', 'netstack', 'policy', 'vpn'].flatMap((d) => sourceFiles(join(ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    for (const p of patterns) for (const m of text.matchAll(p)) named.add(m[1]);
  }
  expect([...named].sort()).toEqual([...RECORD_TYPES].sort());
});
