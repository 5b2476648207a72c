// A new TCP flow under policy (NetStackOptions.tcpHandler for flows leaving
// the concentrator). Decided at the SYN when no name can change the outcome:
//   block   -> reset at once (no upstream is opened)
//   inspect -> the TLS engine (a flow that is not TLS follows tls.nonTls)
//   bypass  -> on an inspected port the TLS engine relays it undecrypted;
//              elsewhere it is forwarded
//   allow   -> forwarded
// When a rule with hosts or categories could change it, the name is read
// first: on an inspected port by the TLS engine (SNI), elsewhere by
// name_reader.ts (SNI, or the Host of a plain HTTP request).
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TcpFlowHandler, TcpFlowInfo } from '../../netstack';
import type { InspectedFlow, NonTlsAction } from '../../mitm';
import type { FlowPolicy, OpenedFlow } from './decide';
import { readName } from './name_reader';
import { tlsHook } from './tls_hook';

const CONNECT_TIMEOUT_MS = 10_000;

export interface TcpPolicyDeps {
  fp: FlowPolicy;
  /** The inspection engine: takes both streams of a flow. */
  engine: { handle(client: Duplex, upstream: Socket, flow: InspectedFlow): void };
  /** Opens the upstream TCP connection; rejects with netstack's TcpOpenError. */
  dial: (host: string, port: number, timeoutMs: number) => Promise<Socket>;
  nonTls: NonTlsAction;
}

export class TcpPolicy {
  constructor(private readonly d: TcpPolicyDeps) {}

  /** null refuses the flow with a reset; undefined forwards it (socket egress). */
  handlerFor(info: TcpFlowInfo): TcpFlowHandler | null | undefined {
    const { fp } = this.d;
    const opened = fp.openTcp(info.owner, info.dst, info.dstPort);
    // The flow's record carries the verdict it ends with (named once its name is read).
    info.decision = { get rule() { return opened.verdict.rule; }, get action() { return opened.verdict.action; } };
    const inspectedPort = fp.inspectPorts.has(info.dstPort);
    if (opened.nameMatters) return inspectedPort ? this.viaEngine(opened) : this.readingName(opened);
    switch (opened.early.action) {
      case 'block':
        fp.recordTcp(opened, 'policy-block');
        return null;
      case 'inspect':
        return this.viaEngine(opened);
      case 'bypass':
        return inspectedPort ? this.viaEngine(opened) : undefined;
      case 'allow':
        // Not decrypted on an inspected port, on the admin's word.
        if (inspectedPort) fp.recordTcp(opened, 'policy-bypass');
        return undefined;
    }
  }

  /** The flow as the engine sees it, with its policy hook. */
  inspectedFlow(info: TcpFlowInfo, opened: OpenedFlow): InspectedFlow {
    const flow: InspectedFlow = {
      user: info.owner.user,
      peer: info.owner.id,
      clientAddress: info.client.toString(),
      clientPort: info.clientPort,
      dstAddress: info.dst.toString(),
      dstPort: info.dstPort,
      startedAt: Date.now(),
      rule: opened.verdict.rule,
      action: opened.verdict.action,
    };
    flow.policy = tlsHook(this.d.fp, opened, flow);
    return flow;
  }

  private viaEngine(opened: OpenedFlow): TcpFlowHandler {
    return (info) => this.d.dial(info.dst.toString(), info.dstPort, CONNECT_TIMEOUT_MS).then((sock) => ({
      attach: (client: Duplex) => this.d.engine.handle(client, sock, this.inspectedFlow(info, opened)),
      abort: () => sock.resetAndDestroy(),
    }));
  }

  private readingName(opened: OpenedFlow): TcpFlowHandler {
    return (info) => this.d.dial(info.dst.toString(), info.dstPort, CONNECT_TIMEOUT_MS).then((sock) => ({
      attach: (client: Duplex) => {
        readName({ ...this.d, tcp: this }, info, opened, client, sock).catch(() => {
          this.d.fp.count('tcp.name_read_error');
          client.destroy();
          sock.destroy();
        });
      },
      abort: () => sock.resetAndDestroy(),
    }));
  }
}
