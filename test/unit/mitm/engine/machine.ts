// Harness for the engine's core: one flow's machine fed events on a fake
// clock, every command it answered kept in order. No streams, no sockets:
// the bytes a client would send are real ClientHellos captured from
// node:tls writing into memory, and upstream certificates come from the
// test PKI.

import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { type LoadedCa, ensureCa } from '../../../../mitm/ca';
import { InspectionCore, type Command, type FlowEvent, type FlowTimer, type InspectedFlow, type InspectionCoreOptions, type UpstreamTlsResult } from '../../../../mitm/engine';
import type { FlowPolicyHook, NonTlsDecision, TlsDecision } from '../../../../mitm/flow_policy';
import type { FlowMachine } from '../../../../mitm/engine';
import type { ClientHandshakeEnd } from '../../../../mitm/pinning';
import { TrustStore, type UpstreamError } from '../../../../mitm/upstream';
import type { RelayResult } from '../../../../netstack';
import { type TestCert, makeIntermediate, makeLeaf, makeRoot } from '../../../helpers/pki';
import { tempDir } from '../ca_helpers';

export interface Pki {
  root: TestCert;
  intermediate: TestCert;
  /** Trusts the test root only. */
  trust: TrustStore;
  ca: LoadedCa;
  untrusted: LoadedCa;
  dataDir: string;
}

/** The test "public" PKI (root, intermediate) and a company CA with its untrusted twin, in a temp data dir. */
export function makePki(): Pki {
  const root = makeRoot();
  const intermediate = makeIntermediate(root);
  const dataDir = tempDir('sightline-engine-');
  const { ca, untrusted } = ensureCa(dataDir);
  return { root, intermediate, trust: new TrustStore([root.cert]), ca, untrusted, dataDir };
}

/** The origin's leaf for `host` (127.0.0.1 as its IP SAN too), issued by the test intermediate. */
export function originLeaf(pki: Pki, host: string, opts: Parameters<typeof makeLeaf>[1] = {}): X509Certificate {
  return makeLeaf(pki.intermediate, { dns: [host], ips: ['127.0.0.1'], ...opts }).cert;
}

/** The ClientHello node:tls sends for `servername` (null: none, as to an IP literal) with `opts` (maxVersion, ALPN...), written into memory. */
export function helloBytes(servername: string | null, opts: tls.ConnectionOptions = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const sink = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, cb) => {
        resolve(chunk);
        cb();
        setImmediate(() => socket.destroy());
      },
    });
    // node sends no SNI to an IP literal (RFC 6066 §3).
    const socket = tls.connect({ socket: sink, ...(servername === null ? { host: '127.0.0.1' } : { servername }), ...opts });
    socket.on('error', () => undefined);
  });
}

/** A hook that gives every flow the same decision, recording what it is told. */
export function fixedPolicy(decision: TlsDecision, nonTls: NonTlsDecision = 'nonTls'): FlowPolicyHook & { undecryptedSeen: string[] } {
  const undecryptedSeen: string[] = [];
  return { tls: () => decision, nonTls: () => nonTls, undecrypted: (reason) => void undecryptedSeen.push(reason), undecryptedSeen };
}

export const T0 = Date.now();
export const ORIGIN = '203.0.113.7';

/** A flow of `user` from a tunnel address to ORIGIN:443. */
export function flowOf(over: Partial<InspectedFlow> = {}): InspectedFlow {
  return { user: 'alice', peer: 'peer-key-alice', clientAddress: '10.77.0.2', clientPort: 40_000, dstAddress: ORIGIN, dstPort: 443, startedAt: T0, ...over };
}

export function coreOf(pki: Pki, opts: Partial<InspectionCoreOptions> = {}): InspectionCore {
  return new InspectionCore({ ca: pki.ca, untrustedCa: pki.untrusted, ...opts });
}

export type Rec = Record<string, unknown> & { type: string };

/** One flow's machine, its clock and every command it answered. */
export class FlowUnderTest {
  now = T0;
  readonly commands: Command[] = [];
  readonly machine: FlowMachine;
  private readonly armed = new Map<FlowTimer, number>();

  constructor(readonly core: InspectionCore, over: Partial<InspectedFlow> = {}) {
    this.machine = core.flow(flowOf(over));
    this.take(this.machine.start(this.now));
  }

  feed(ev: FlowEvent): Command[] {
    return this.take(this.machine.handle(ev, this.now));
  }

  /** Moves the clock, firing the machine's armed timers that fall due, in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.armed].filter(([, at]) => at <= until).sort((a, b) => a[1] - b[1])[0];
      if (!due) break;
      this.armed.delete(due[0]);
      this.now = due[1];
      this.feed({ type: 'timer', timer: due[0] });
    }
    this.now = until;
  }

  armedAt(timer: FlowTimer): number | undefined {
    return this.armed.get(timer);
  }

  /** The client's bytes, in one segment or many. */
  client(...segments: Buffer[]): Command[] {
    return segments.flatMap((data) => this.feed({ type: 'client_data', data }));
  }

  upstreamOk(leaf: X509Certificate, over: Partial<Extract<UpstreamTlsResult, { ok: true }>> = {}): Command[] {
    return this.feed({ type: 'upstream_tls', result: { ok: true, leaf, alpn: null, softFails: [], certificateRequired: false, ...over } });
  }

  upstreamFailed(error: UpstreamError, over: Partial<Extract<UpstreamTlsResult, { ok: false }>> = {}): Command[] {
    return this.feed({ type: 'upstream_tls', result: { ok: false, error, detail: `upstream ${error}`, alpn: null, softFails: [], sessionOpen: false, ...over } });
  }

  clientTlsOk(): Command[] {
    return this.feed({ type: 'client_tls', result: { ok: true } });
  }

  clientTlsFailed(end: ClientHandshakeEnd): Command[] {
    return this.feed({ type: 'client_tls', result: { ok: false, end } });
  }

  relayEnd(result: Partial<RelayResult> = {}): Command[] {
    return this.feed({ type: 'relay_end', result: { end: 'closed', fromClient: 0, fromServer: 0, firstEnd: 'client', ...result } });
  }

  /** Records written so far (optionally of one type), as the log would hold them. */
  records(type?: string): Rec[] {
    const all = this.commands.flatMap((c) => (c.type === 'record' ? [{ ...c.fields, type: c.recordType } as Rec] : []));
    return type === undefined ? all : all.filter((r) => r.type === type);
  }

  /** The flow's single `flow_end` record. */
  get ended(): Rec {
    const ends = this.records('flow_end');
    if (ends.length !== 1) throw new Error(`expected one flow_end, got ${ends.length}: ${JSON.stringify(this.records())}`);
    return ends[0];
  }

  of<T extends Command['type']>(type: T): Array<Extract<Command, { type: T }>> {
    return this.commands.filter((c): c is Extract<Command, { type: T }> => c.type === type);
  }

  /** The command the flow answered last of this type. */
  last<T extends Command['type']>(type: T): Extract<Command, { type: T }> {
    const all = this.of(type);
    if (all.length === 0) throw new Error(`no ${type} command in ${JSON.stringify(this.commands.map((c) => c.type))}`);
    return all[all.length - 1];
  }

  /** The streams the flow destroyed, in order. */
  get destroyed(): string[] {
    return this.of('destroy').map((c) => c.stream);
  }

  private take(cmds: Command[]): Command[] {
    for (const c of cmds) {
      this.commands.push(c);
      if (c.type === 'arm') this.armed.set(c.timer, c.at);
      if (c.type === 'disarm') this.armed.delete(c.timer);
    }
    return cmds;
  }
}

/** A flow whose ClientHello for `sni` was read and which is inspected: waiting for the upstream TLS result. */
export async function inspectedFlow(core: InspectionCore, sni: string | null, over: Partial<InspectedFlow> = {}, helloOpts: tls.ConnectionOptions = {}): Promise<FlowUnderTest> {
  const f = new FlowUnderTest(core, over);
  f.client(await helloBytes(sni, helloOpts));
  return f;
}
