// Decisions by name: what the TLS engine is told to do once the SNI is read
// (tls_hook), and flows on other ports whose name is read first
// (name_reader): the SNI of TLS, the Host of plain HTTP, nothing for other
// protocols, with real loopback sockets standing in for the tunnel client
// and the origin.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientHelloInfo, InspectedFlow, TlsDecision } from '../../../mitm';
import type { TcpFlowInfo } from '../../../netstack';
import { IpAddress } from '../../../netstack/wire';
import { PolicyHolder } from '../../../policy';
import { FlowPolicy, TcpPolicy } from '../../../vpn/flow_policy';
import { clientHelloBytes } from '../mitm/tls_clients';
import { policyFrom } from '../policy/helpers';

const alice = { id: 'alice-key', user: 'alice', device: 'laptop' };

function setup(yaml: string) {
  const records: Array<Record<string, unknown>> = [];
  const fp = new FlowPolicy({ holder: new PolicyHolder(policyFrom(yaml)), inspectPorts: [443], records: { write: (_u, _p, type, f = {}) => records.push({ type, ...f }) }, now: () => 0 });
  const toEngine: Array<{ flow: InspectedFlow; decision: TlsDecision }> = [];
  const tcp = new TcpPolicy({
    fp,
    engine: { handle: (c, u, flow) => {
      toEngine.push({ flow, decision: flow.policy!.tls({ sni: null } as ClientHelloInfo) });
      c.destroy();
      u.destroy();
    } },
    dial: (host, port) => new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(s));
      s.once('error', reject);
    }),
    nonTls: 'block',
  });
  return { fp, tcp, records, toEngine };
}

const hello = (sni: string | null): ClientHelloInfo => ({ sni } as ClientHelloInfo);

function tlsDecision(yaml: string, sni: string | null, port = 443, dst = '192.0.2.9'): TlsDecision {
  const { fp, tcp } = setup(yaml);
  const info = flowInfo(dst, port);
  const opened = fp.openTcp(alice, info.dst, port);
  return tcp.inspectedFlow(info, opened).policy!.tls(hello(sni));
}

function flowInfo(dst: string, port: number): TcpFlowInfo {
  return { owner: alice, family: 4, client: IpAddress.parse('10.77.0.2'), clientPort: 40000, dst: IpAddress.parse(dst), dstPort: port, local: false };
}

describe('the TLS engine is told, once the SNI is read', () => {
  const byName = (rest: string) => `policy:\n  rules:\n    - { id: banks, action: bypass, hosts: [bank.test] }\n${rest}`;

  test('a bypass by name, where the flow without the name is inspected: relayed raw once the destination proved the name, inspected if not', () => {
    expect(tlsDecision(byName('    - { id: tls, action: inspect, ports: [443] }\n'), 'bank.test')).toEqual({ action: 'bypass', reason: 'policy-bypass', verify: true, unverified: 'inspect' });
  });

  test('a bypass by name, where the flow without the name is blocked: a destination that cannot prove the name is blocked', () => {
    expect(tlsDecision(byName('    - { id: nothing-else, action: block }\n'), 'bank.test')).toMatchObject({ verify: true, unverified: 'block' });
  });

  test('an allow by category carries the reason category and is verified like a bypass', () => {
    const d = tlsDecision('policy:\n  rules:\n    - { id: health, action: allow, categories: [privacy-health] }\n    - { id: tls, action: inspect }\n', 'www.mychart.com');
    expect(d).toEqual({ action: 'bypass', reason: 'category', verify: true, unverified: 'inspect' });
  });

  test('a bypass by name where the flow without it is forwarded anyway needs no proof', () => {
    expect(tlsDecision(byName('    - { id: rest, action: allow }\n'), 'bank.test')).toMatchObject({ verify: false });
  });

  test('a bypass by a rule without names is relayed as it is; without SNI the reason is no-sni', () => {
    const yaml = 'policy:\n  rules:\n    - { id: lab, action: bypass, dst: [192.0.2.0/24] }\n';
    expect(tlsDecision(yaml, 'x.test')).toEqual({ action: 'bypass', reason: 'policy-bypass', verify: false, unverified: 'inspect' });
    expect(tlsDecision(yaml, null)).toMatchObject({ reason: 'no-sni', verify: false });
  });

  test('an inspected name on the shipped pinned-apps list is bypassed (verified), reason pinned-listed', () => {
    expect(tlsDecision('', '1-courier.push.apple.com')).toEqual({ action: 'bypass', reason: 'pinned-listed', verify: true, unverified: 'inspect' });
    expect(tlsDecision('', 'www.example.test')).toEqual({ action: 'inspect' });
  });
});

describe('a port that is not inspected, when a rule by name could change the verdict', () => {
  const RULES = 'policy:\n  rules:\n    - { id: no-evil, action: block, hosts: [evil.test] }\n    - { id: rest, action: allow }\n';
  let origin: net.Server;
  let originPort: number;
  let received: string[];
  const sockets = new Set<net.Socket>();

  beforeEach(async () => {
    received = [];
    origin = net.createServer((s) => {
      sockets.add(s);
      s.on('data', (d: Buffer) => {
        received.push(d.toString('latin1'));
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originPort = (origin.address() as net.AddressInfo).port;
  });
  afterEach(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => origin.close(() => r()));
  });

  /** A client connection through the handler the policy chose, sending `send` in parts 50 ms apart; returns what the client received. */
  async function through(s: ReturnType<typeof setup>, ...send: Array<Buffer | string>): Promise<string> {
    const info = flowInfo('127.0.0.1', originPort);
    const handler = s.tcp.handlerFor(info);
    if (typeof handler !== 'function') throw new Error(`expected a handler, got ${String(handler)}`);
    const front = net.createServer();
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Duplex>((r) => front.once('connection', r));
    const client = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1');
    const upstream = await handler(info);
    upstream.attach(await accepted);
    for (const [i, part] of send.entries()) setTimeout(() => client.write(part), i * 50);
    return new Promise((resolve) => {
      const timer = setTimeout(() => client.destroy(), 5000);
      let got = '';
      client.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n') && /content-length: (\d+)/i.test(got)) client.end();
      });
      client.on('error', () => undefined);
      client.on('close', () => {
        clearTimeout(timer);
        front.close();
        resolve(got);
      });
    });
  }

  test('plain HTTP asking for a blocked Host gets a 403 naming the rule, and the origin gets nothing', async () => {
    const s = setup(RULES);
    const got = await through(s, 'GET / HTTP/1.1\r\nHost: EVIL.test:8080\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1.1 403 Forbidden\r\n/);
    expect(got).toContain('rule no-evil');
    expect(received).toEqual([]);
    expect(s.records).toEqual([expect.objectContaining({ type: 'policy', rule: 'no-evil', action: 'block', reason: 'policy-block', host: 'evil.test' })]);
  });

  test('plain HTTP for another Host reaches the origin with its request intact, even sent in pieces', async () => {
    const s = setup(RULES);
    const parts = ['GET /a HTTP/1.1\r\n', 'User-Agent: t\r\nHo', 'st: fine.test\r\n', '\r\n'];
    const got = await through(s, ...parts);
    expect(got).toContain('200 OK');
    expect(received.join('')).toBe(parts.join(''));
  });

  test('a protocol that is not HTTP or TLS is decided without a name and forwarded', async () => {
    const s = setup(RULES);
    await through(s, 'SSH-2.0-OpenSSH_9.6\r\n');
    expect(received.join('')).toBe('SSH-2.0-OpenSSH_9.6\r\n');
  });

  test('TLS naming a blocked host goes to the TLS engine with a block (an access_denied alert)', async () => {
    const s = setup(RULES);
    await through(s, await clientHelloBytes('evil.test'));
    expect(s.toEngine.map((e) => [e.flow.rule, e.decision])).toEqual([['no-evil', { action: 'block' }]]);
  });

  test('TLS naming another host is forwarded as it is, without the engine', async () => {
    const s = setup(RULES);
    const hello = await clientHelloBytes('fine.test');
    await through(s, hello);
    expect(s.toEngine).toEqual([]);
    expect(Buffer.from(received.join(''), 'latin1').equals(hello)).toBe(true);
  });
});
