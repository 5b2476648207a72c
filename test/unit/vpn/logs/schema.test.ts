// docs/log-schema.json is the published contract of the per-user logs: every
// record type the code writes, generated here through the real writers (the
// inspection engine against loopback origins, the TCP stack, the session and
// DNS writers, the DNS forwarder against a loopback resolver), validates
// against it, and the schema, the CLI's type list and the types named in the
// source agree. An undocumented field or type fails here.
import Ajv2020 from 'ajv/dist/2020';
import { createSocket } from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import pino from 'pino';
import { LeafMinter } from '../../../../mitm/mint';
import { PinningTracker } from '../../../../mitm/pinning';
import { EgressGuard, NetStack } from '../../../../netstack';
import { IpAddress, IpCidr, RST, SYN, buildTcpPacket } from '../../../../netstack/wire';
import { defaultConfig } from '../../../../vpn/config';
import { DnsForwarder } from '../../../../vpn/dns';
import { httpRecords, Inspection, loadInspectionCa } from '../../../../vpn/inspection';
import { RECORD_TYPES, UserLog, userLogFiles } from '../../../../vpn/logs';
import { DnsLog, dnsQuestion } from '../../../../vpn/logs/dns_log';
import { SessionLog } from '../../../../vpn/logs/session_log';
import { makeLeaf, makeRoot } from '../../../helpers/pki';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';
import { close, fixedPolicy, get, handshake, listen, makePki, originCert, type EngineSetup, type Pki, withEngine } from '../../mitm/engine_harness';
import { sClient } from '../../mitm/tls_clients';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..', '..', '..');
const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'log-schema.json'), 'utf8')) as { properties: { type: { enum: string[] } } };
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);

let pki: Pki;
let dataDir: string;
let userLog: UserLog;

beforeAll(async () => {
  pki = makePki();
  dataDir = tempDir('sightline-schema-');
  userLog = new UserLog({ dataDir, deviceOf: (peer) => (peer === 'peer-key-alice' ? 'laptop' : undefined) });
  await inspectionRecords();
  await flowRecord();
  await dnsRecords();
  sessionRecords();
  recordsOfOtherBranches();
  await userLog.close();
});
afterAll(removeTempDirs);

/** Runs a scenario against the engine whose records go to the real per-user log. */
async function scenario(origin: net.Server, setup: EngineSetup, run: (port: number) => Promise<unknown>, flows = 1): Promise<void> {
  await withEngine(pki, origin, async (eut) => {
    await run(eut.port);
    await eut.ended(flows);
  }, { ...setup, records: userLog });
}

const good = (): https.Server => https.createServer(originCert(pki, 'good.test'), (_q, s) => s.end('ok'));

async function inspectionRecords(): Promise<void> {
  // Inspected request: http + flow_end.
  await scenario(good(), { httpLogger: httpRecords(userLog) }, (port) => get(port, '/a?q=1', { servername: 'good.test', ca: pki.ca.certPem }));
  // A self-signed upstream: tls_upstream_rejected.
  const self = makeLeaf(makeRoot({ cn: 'Nobody' }), { dns: ['bad.test'] });
  await scenario(https.createServer({ key: self.keyPem, cert: self.pem }), {}, (port) => handshake(port, { servername: 'bad.test', ca: [pki.ca.certPem] }));
  // Policy block: tls_blocked.
  await scenario(good(), { policy: fixedPolicy({ action: 'block' }) }, (port) => handshake(port, { servername: 'good.test', ca: [pki.ca.certPem] }));
  // Not TLS on an inspected port: non_tls.
  await scenario(net.createServer((s) => s.destroy()), {}, (port) => plainHttp(port));
  // A pinned app refuses our leaf (tls_client_rejected, tls_pinned), then is bypassed (tls_bypass).
  const tracker = new PinningTracker({ threshold: 1 });
  await scenario(good(), { pinning: { tracker } }, async (port) => {
    await sClient(port, 'good.test', pki.root.pem);
    await new Promise((r) => setTimeout(r, 200));
    await sClient(port, 'good.test', pki.root.pem);
  }, 2);
  // An approved bypass to a server that cannot prove the name: tls_bypass_refused (then tls_upstream_rejected).
  await scenario(good(), { pinning: { mode: 'approve', approvals: { isApproved: () => true } } }, (port) =>
    handshake(port, { servername: 'other.test', ca: [pki.ca.certPem] }));
  // OCSP responder unreachable in soft mode: tls_revocation_soft_fail.
  const orphan = makeLeaf(pki.intermediate, { dns: ['orphan.test'], ocspUrl: `http://127.0.0.1:${await closedPort()}/` });
  await scenario(https.createServer({ key: orphan.keyPem, cert: orphan.pem + pki.intermediate.pem }, (_q, s) => s.end('ok')), { tls: { revocation: 'soft' } },
    (port) => get(port, '/', { servername: 'orphan.test', ca: pki.ca.certPem }));
  // The leaf cannot be made: tls_mint_failed.
  const failing = Object.assign(Object.create(LeafMinter.prototype) as LeafMinter, { mint: () => { throw new Error('minting disabled for the test'); } });
  await scenario(good(), { minter: failing }, (port) => handshake(port, { servername: 'good.test', ca: [pki.ca.certPem] }));
}

function plainHttp(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

async function closedPort(): Promise<number> {
  const tmp = net.createServer();
  const port = await listen(tmp);
  await close(tmp);
  return port;
}

/** A TCP flow through the real stack, ended by the client's reset, recorded as the concentrator does. */
async function flowRecord(): Promise<void> {
  const inspection = new Inspection(dataDir, defaultConfig(), loadInspectionCa(dataDir, undefined), pino({ level: 'silent' }), undefined, userLog);
  const client = IpAddress.parse('10.77.0.2');
  const origin = IpAddress.parse('192.0.2.10');
  const out: Buffer[] = [];
  let ended = false;
  const stack = new NetStack({
    localAddresses: [IpAddress.parse('10.77.0.1')],
    guard: new EgressGuard({ tunnelAddresses: [IpAddress.parse('10.77.0.1')], tunnelPools: [IpCidr.parse('10.77.0.0/24')], listener: null }),
    fds: { hasRoom: () => true },
    toClient: (p) => out.push(p),
    udp: { idleTimeoutMs: 60_000, maxFlowsPerUser: 4 },
    tcp: { mtu: 1420, maxFlowsPerUser: 10, maxSynPerSecond: 100, idleTimeoutMs: 60_000 },
    tcpHandler: () => () => Promise.resolve({ attach: (c: Duplex) => void c.resume(), abort: () => undefined }),
    onFlowEnd: (r) => {
      inspection.flowEnded(r);
      ended = true;
    },
  });
  const owner = { id: 'peer-key-alice', user: 'alice' };
  const seg = (seq: number, flags: number) => buildTcpPacket(client, origin, { srcPort: 40000, dstPort: 80, seq, ack: 0, flags, window: 65535, urgent: 0, options: {}, payload: Buffer.alloc(0) });
  stack.receive(seg(1000, SYN), owner, performance.now());
  await new Promise((r) => setTimeout(r, 20));
  stack.receive(seg(1001, RST), owner, performance.now());
  for (let i = 0; i < 50 && !ended; i++) await new Promise((r) => setTimeout(r, 10));
  stack.close();
  await inspection.close();
  expect(ended).toBe(true);
}

/** A query forwarded to a loopback resolver, recorded through the forwarder's onDone hook. */
async function dnsRecords(): Promise<void> {
  const server = createSocket('udp4');
  server.on('message', (m, r) => {
    const a = Buffer.from(m);
    a.writeUInt16BE(0x8183, 2); // NXDOMAIN
    server.send(a, r.port, r.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const fwd = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: server.address().port }], timeoutMs: 2000 });
  const dns = new DnsLog(userLog);
  const q = Buffer.from('123401000001000000000000046e6f7065047465737400001c0001', 'hex');
  const asker = { id: 'peer-key-alice', user: 'alice' };
  await new Promise<void>((resolve) => fwd.handle(q, 512, () => undefined, 'alice', (o) => {
    dns.exchange(asker, dnsQuestion(q), o, 1.5);
    resolve();
  }));
  // No upstream answering: TIMEOUT.
  const dead = new DnsForwarder({ upstreams: [{ host: '127.0.0.1', port: await closedPort() }], timeoutMs: 300 });
  await new Promise<void>((resolve) => dead.handle(q, 512, () => undefined, 'alice', (o) => {
    dns.exchange(asker, dnsQuestion(q), o, 300);
    resolve();
  }));
  fwd.close();
  dead.close();
  server.close();
}

function sessionRecords(): void {
  const s = new SessionLog(userLog);
  const laptop = { id: 'peer-key-alice', user: 'alice', device: 'laptop' };
  s.handshake(laptop, '198.51.100.7:40000');
  s.roamed(laptop, '198.51.100.7:40000', '[2001:db8::7]:40000');
  s.ended(laptop, 'session_expired');
  s.handshake(laptop, null);
  s.expired(laptop);
}

/**
 * egress_denied (egress guard) and policy (policy engine) are written by
 * code on other branches; until their writers land here, records with the
 * fields their issues specify go through the same writer.
 */
function recordsOfOtherBranches(): void {
  userLog.write('alice', 'peer-key-alice', 'egress_denied', { proto: 'tcp', dst: '127.0.0.1', dstPort: 22, reason: 'loopback' });
  userLog.write('alice', 'peer-key-alice', 'policy', { rule: 'finance-exempt', action: 'bypass', reason: 'finance sites are not decrypted', host: 'bank.test', dst: '192.0.2.1', dstPort: 443, proto: 'tcp' });
}

function allRecords(): Array<Record<string, unknown>> {
  const users = readdirSync(userLog.dir).filter((n) => n.endsWith('.ndjson')).map((n) => n.slice(0, -'.ndjson'.length));
  return users.flatMap((u) => userLogFiles(userLog.dir, u).flatMap((f) => readFileSync(f.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)));
}

test('every record written validates against docs/log-schema.json', () => {
  const records = allRecords();
  expect(records.length).toBeGreaterThan(20);
  const failures = records.flatMap((r) => (validate(r) ? [] : [{ record: r, errors: validate.errors }]));
  expect(failures).toEqual([]);
});

test('the scenarios produced every record type the schema describes', () => {
  const seen = new Set(allRecords().map((r) => String(r.type)));
  expect([...RECORD_TYPES].filter((t) => !seen.has(t))).toEqual([]);
});

test("the schema's types are the CLI's types (sightline logs --type)", () => {
  expect(schema.properties.type.enum).toEqual([...RECORD_TYPES]);
});

test('the schema refuses an undocumented field, a missing field and an unknown type', () => {
  const ok = { level: 'info', time: '2026-12-01T09:00:00.000Z', type: 'tls_blocked', user: 'a', peer: 'k', device: 'laptop', host: 'h', reason: 'policy' };
  expect(validate(ok)).toBe(true);
  expect(validate({ ...ok, password: 'x' })).toBe(false);
  expect(validate({ ...ok, host: undefined })).toBe(false);
  expect(validate({ ...ok, type: 'tls_blockd' })).toBe(false);
  expect(validate({ ...ok, device: undefined })).toBe(false);
});

test('every record type named in the source is in the schema', () => {
  const sources = ['mitm/engine/flow.ts', 'mitm/engine/core.ts', 'mitm/engine/flow_run.ts', 'netstack/tcp_flows.ts', 'vpn/logs/session_log.ts', 'vpn/logs/dns_log.ts', 'vpn/inspection.ts'];
  const named = new Set<string>();
  for (const file of sources) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/\brecord\('([a-z_]+)'|(?:records|userLog)\.write\([^)]*?,\s*'([a-z_]+)'|type: '([a-z_]+)',\n\s*proto:/g)) named.add(m[1] ?? m[2] ?? m[3]);
  }
  expect(named.size).toBeGreaterThan(8);
  expect([...named].filter((t) => !(RECORD_TYPES as readonly string[]).includes(t))).toEqual([]);
});
