// The inspection engine behind a loopback listener, for tests outside the
// engine that want its records from real clients (the per-user log schema
// test, the portal): a listener plays the TCP stack (it accepts the client's
// connection, opens the upstream socket to the origin first, then hands both
// to engine.handle). The engine's own tests run in memory (engine/).

import { createHash } from 'node:crypto';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { InspectedFlow, InspectionEngine, InspectionEngineOptions } from '../../../mitm/engine';
import type { FlowPolicyHook } from '../../../mitm/flow_policy';
import { TestCert, makeLeaf } from '../../helpers/pki';
import { MemoryRecords } from './engine/adapter';
import { type Pki, type Rec, fixedPolicy, makePki } from './engine/machine';

export { MemoryRecords, type Pki, fixedPolicy, makePki };

/** A leaf for `host` (and 127.0.0.1 as IP SAN) with the chain to send. */
export function originCert(pki: Pki, host: string, opts: Parameters<typeof makeLeaf>[1] = {}): { key: string; cert: string; leaf: TestCert } {
  const leaf = makeLeaf(pki.intermediate, { dns: [host], ips: ['127.0.0.1'], ...opts });
  return { key: leaf.keyPem, cert: leaf.pem + pki.intermediate.pem, leaf };
}

export async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

export function close(server: net.Server | http2.Http2SecureServer): Promise<void> {
  return new Promise((resolve) => {
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** The engine behind a loopback listener; every accepted connection becomes a flow to `originPort`. */
export class EngineUnderTest {
  readonly records = new MemoryRecords();
  readonly engine: InspectionEngine;
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  originPort = 0;
  port = 0;

  /** Hand the engine a plain Duplex instead of the net.Socket, as the userspace TCP stack does. */
  genericDuplex = false;
  /** Given to every flow, or made per flow (the concentrator's wiring builds one per flow from the policy). */
  policy: FlowPolicyHook | ((flow: InspectedFlow) => FlowPolicyHook) | undefined = undefined;

  constructor(pki: Pki, opts: Partial<InspectionEngineOptions> = {}, readonly user = 'alice') {
    const extra = opts.records;
    // Records also reach the test's own sink, so ended() works whatever the engine writes to.
    const records = extra ? { write: (...a: Parameters<MemoryRecords['write']>) => { extra.write(...a); this.records.write(...a); } } : this.records;
    this.engine = new InspectionEngine({ ca: pki.ca, untrustedCa: pki.untrusted, trust: pki.trust, tls: { revocation: 'off' }, ...opts, records });
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  async start(originPort: number): Promise<this> {
    this.originPort = originPort;
    this.port = await listen(this.server);
    return this;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    // As the TCP stack does: the client's flow is handed over only once the upstream connect succeeded.
    const upstream = net.connect({ host: '127.0.0.1', port: this.originPort });
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.once('error', () => client.destroy());
    upstream.once('connect', () => {
      const flow: InspectedFlow = {
        user: this.user, peer: 'peer-key-alice', clientAddress: client.remoteAddress ?? '', clientPort: client.remotePort ?? 0,
        dstAddress: '127.0.0.1', dstPort: this.originPort, startedAt: Date.now(),
      };
      flow.policy = typeof this.policy === 'function' ? this.policy(flow) : this.policy;
      this.engine.handle(this.genericDuplex ? asGenericDuplex(client) : client, upstream, flow);
    });
  }

  /** Waits until `n` flows have ended (bounded). */
  async ended(n: number, timeoutMs = 10_000): Promise<Rec[]> {
    for (let waited = 0; waited < timeoutMs; waited += 20) {
      const ends = this.records.ofType('flow_end');
      if (ends.length >= n) return ends;
      await sleep(20);
    }
    throw new Error(`only ${this.records.ofType('flow_end').length} of ${n} flows ended: ${JSON.stringify(this.records.all)}`);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await close(this.server);
  }
}

/** Engine options, plus how the harness hands the client stream to the engine and the flows' policy. */
export type EngineSetup = Partial<InspectionEngineOptions> & { genericDuplex?: boolean; policy?: EngineUnderTest['policy'] };

/** Runs `run` against an engine whose flows go to `origin`, then stops both. */
export async function withEngine<T>(pki: Pki, origin: net.Server, run: (eut: EngineUnderTest) => Promise<T>, setup: EngineSetup = {}): Promise<T> {
  const { genericDuplex = false, policy, ...opts } = setup;
  const eut = new EngineUnderTest(pki, opts);
  eut.genericDuplex = genericDuplex;
  eut.policy = policy;
  await eut.start(await listen(origin));
  try {
    return await run(eut);
  } finally {
    await eut.stop();
    await close(origin);
  }
}

/** A Duplex that is not a net.Socket (no libuv handle), with backpressure both ways and half-close. */
export function asGenericDuplex(socket: net.Socket): Duplex {
  const d = new Duplex({
    allowHalfOpen: true,
    read: () => void socket.resume(),
    write: (chunk: Buffer, _enc, cb) => void socket.write(chunk, cb),
    final: (cb) => void socket.end(cb),
    destroy: (err, cb) => {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('error', (e) => d.destroy(e));
  socket.on('close', () => {
    if (!d.readableEnded || !d.writableFinished) d.destroy();
  });
  return d;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface FetchResult {
  status: number;
  body: Buffer;
  alpn: string | false | null;
  peer: tls.PeerCertificate;
}

/** HTTP/1.1 GET through the engine, trusting only `caPem`. */
export function get(port: number, path: string, opts: { servername?: string; ca: string; host?: string }): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path, agent: false, ca: [opts.ca], servername: opts.servername,
      headers: { host: opts.host ?? opts.servername ?? '127.0.0.1' }, timeout: 15_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      const socket = res.socket as tls.TLSSocket;
      const peer = socket.getPeerCertificate();
      const alpn = socket.alpnProtocol;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), alpn, peer }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** A bare TLS handshake; resolves with the peer certificate or the client's error code. */
export function handshake(port: number, opts: tls.ConnectionOptions): Promise<{ ok: true; peer: tls.PeerCertificate; socket: tls.TLSSocket } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts });
    socket.setTimeout(15_000, () => socket.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    socket.once('secureConnect', () => resolve({ ok: true, peer: socket.getPeerCertificate(), socket }));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

export function subjectCN(peer: tls.PeerCertificate, which: 'subject' | 'issuer'): string {
  const cn = peer[which]?.CN;
  return Array.isArray(cn) ? cn.join(',') : (cn ?? '');
}
