// Harness for the engine's stream adapter: the engine runs over in-memory
// connections (memory_streams.ts) on a fake clock, with real node:tls on
// every side. The client end is what a tunnel client would hold; origins are
// node:https / node:http2 / node:tls / node:net servers fed through their
// 'connection' event; the engine's own probes dial the same origin in memory.

import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { InspectionEngine, type InspectedFlow, type InspectionEngineOptions } from '../../../../mitm/engine';
import type { FlowPolicyHook } from '../../../../mitm/flow_policy';
import { alertRecord } from '../../../../mitm/alerts';
import { ServerFlightScanner } from '../../../../mitm/upstream';
import { makeLeaf } from '../../../helpers/pki';
import { FakeClock, type MemoryEnd, connectTo, duplexPair, until } from '../memory_streams';
import { type Pki, type Rec, helloBytes } from './machine';

/** A server that takes connections through its 'connection' event. */
export interface Origin {
  emit(event: 'connection', socket: Duplex): boolean;
}

export class MemoryRecords {
  readonly all: Rec[] = [];
  write(user: string, peer: string, type: string, fields: Record<string, unknown> = {}): void {
    this.all.push({ ...fields, type, user, peer });
  }
  ofType(type: string): Rec[] {
    return this.all.filter((r) => r.type === type);
  }
}

/** The origin's key and chain for `host` (127.0.0.1 as an IP SAN too), as a server loads them. */
export function originCert(pki: Pki, host: string, opts: Parameters<typeof makeLeaf>[1] = {}): { key: string; cert: string; fingerprint: string } {
  const leaf = makeLeaf(pki.intermediate, { dns: [host], ips: ['127.0.0.1'], ...opts });
  return { key: leaf.keyPem, cert: leaf.pem + pki.intermediate.pem, fingerprint: leaf.cert.fingerprint256 };
}

/** The engine, one origin, and the flows between them. */
export class EngineOverMemory {
  readonly records = new MemoryRecords();
  readonly clock = new FakeClock();
  readonly engine: InspectionEngine;
  /** Given to every flow, or made per flow. */
  policy: FlowPolicyHook | ((flow: InspectedFlow) => FlowPolicyHook) | undefined;
  /** Connections the engine's own probes and scans opened to the origin. */
  dialed = 0;

  constructor(pki: Pki, private origin: Origin, opts: Partial<InspectionEngineOptions> & { policy?: FlowPolicyHook } = {}, readonly user = 'alice') {
    const { policy, ...rest } = opts;
    this.policy = policy;
    const extra = rest.records;
    const records = extra ? { write: (...a: Parameters<MemoryRecords['write']>) => { extra.write(...a); this.records.write(...a); } } : this.records;
    this.engine = new InspectionEngine({
      ca: pki.ca, untrustedCa: pki.untrusted, trust: pki.trust, tls: { revocation: 'off' }, clock: this.clock,
      dial: () => {
        this.dialed++;
        return Promise.resolve(connectTo(this.origin));
      },
      ...rest,
      records,
    });
  }

  /** Flows from now on go to `origin`. */
  to(origin: Origin): this {
    this.origin = origin;
    return this;
  }

  /** A new flow through the engine to the origin: the client's end of it. */
  connect(): MemoryEnd {
    const [client, engineSide] = duplexPair();
    const flow: InspectedFlow = {
      user: this.user, peer: 'peer-key-alice', clientAddress: '10.77.0.2', clientPort: 40_000, dstAddress: '127.0.0.1', dstPort: 443, startedAt: this.clock.now(),
    };
    flow.policy = typeof this.policy === 'function' ? this.policy(flow) : this.policy;
    this.engine.handle(engineSide, connectTo(this.origin), flow);
    return client;
  }

  /** Waits (bounded) until `n` flows have ended. */
  ended(n: number): Promise<Rec[]> {
    return until(`${n} flow_end records (have ${JSON.stringify(this.records.all)})`, () => {
      const ends = this.records.ofType('flow_end');
      return ends.length >= n ? ends : undefined;
    });
  }
}

export type Handshake = { ok: true; socket: tls.TLSSocket; peer: tls.PeerCertificate } | { ok: false; code: string };

/** A TLS client over `end`; settles when its handshake completes or fails. */
export function handshake(end: Duplex, opts: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ socket: end, ...opts });
    socket.once('secureConnect', () => resolve({ ok: true, socket, peer: socket.getPeerCertificate() }));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

export interface Fetched {
  status: number;
  body: Buffer;
  alpn: string | false | null;
  peer: tls.PeerCertificate;
}

/** An HTTP/1.1 request over a new flow, trusting only `ca`. */
export function get(eut: EngineOverMemory, path: string, opts: { servername: string; ca: string; method?: string; headers?: Record<string, string>; body?: Buffer }): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      path, method: opts.method ?? 'GET', headers: { host: opts.servername, ...opts.headers },
      createConnection: () => tls.connect({ socket: eut.connect(), servername: opts.servername, ca: [opts.ca] }),
    }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const peer = socket.getPeerCertificate();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), alpn: socket.alpnProtocol, peer }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * A pinned app, as `openssl s_client -verify_return_error` behaves: it sends
 * a TLS 1.2 ClientHello, reads the server's certificate (in clear in TLS
 * 1.2) and, not trusting it, answers with a fatal unknown_ca alert
 * (RFC 8446 §6.2). Resolves with the leaf it was shown.
 */
export async function pinnedAppRefuses(end: Duplex, servername: string): Promise<string | null> {
  const hello = await helloBytes(servername, { maxVersion: 'TLSv1.2' });
  return new Promise((resolve) => {
    const scanner = new ServerFlightScanner();
    end.write(hello);
    end.on('data', (d: Buffer) => {
      if (!scanner.push(d).complete) return;
      end.end(alertRecord(48));
    });
    end.on('error', () => undefined);
    end.on('close', () => resolve(scanner.flight.chain[0]?.fingerprint256 ?? null));
  });
}
