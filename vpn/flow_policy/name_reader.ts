// A TCP flow on a port that is not inspected, whose verdict a rule with
// hosts or categories could change: its name is read from the first bytes,
// with the upstream connection already open (no byte is sent before the
// decision).
//   TLS          -> the SNI; then as tls_hook.ts decides (a plain forward is
//                   relayed here, everything else goes to the TLS engine)
//   plain HTTP   -> the request's Host (http_host.ts); a block answers 403
//   anything else, or the server speaking first -> no name
// Bounded in bytes (a ClientHello or request head of at most 16 KB) and in
// time (10 s for the first bytes, 10 s more for the rest of a request
// head); a flow that does not show its name in time is reset, so that
// waiting is no way around a rule by name.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { relay, type TcpFlowInfo } from '../../netstack';
import { ClientHelloReader, readFirstBytes, refuseWith, RequestHostReader } from '../../mitm';
import type { OpenedFlow } from './decide';
import type { TcpPolicy, TcpPolicyDeps } from './tcp';

export const FIRST_BYTES_TIMEOUT_MS = 10_000;
export const REQUEST_HEAD_TIMEOUT_MS = 10_000;

type Deps = TcpPolicyDeps & { tcp: TcpPolicy };

export async function readName(d: Deps, info: TcpFlowInfo, opened: OpenedFlow, client: Duplex, upstream: Socket): Promise<void> {
  client.on('error', () => undefined);
  upstream.on('error', () => undefined);
  const reader = new ClientHelloReader();
  const first = await readFirstBytes(client, upstream, reader, FIRST_BYTES_TIMEOUT_MS);
  let replay = reader.buffered();
  if (first.kind === 'done') {
    const flow = d.tcp.inspectedFlow(info, opened);
    const hook = flow.policy as NonNullable<typeof flow.policy>;
    const decision = hook.tls(first.hello);
    if (decision.action === 'bypass' && !decision.verify) {
      forward(client, upstream, replay, Buffer.alloc(0));
      return;
    }
    // Inspect, block with an alert, or a bypass the destination must prove: the engine does it, with this decision.
    flow.policy = { ...hook, tls: () => decision };
    client.unshift(replay);
    d.engine.handle(client, upstream, flow);
    return;
  }
  if (first.kind !== 'not_tls') {
    d.fp.count(`tcp.name_${first.kind}`);
    abort(client, upstream);
    return;
  }
  const http = first.from === 'client' && first.guess === 'http';
  let host: string | null = null;
  if (http) {
    const head = await readRequestHost(client, replay);
    if (head.kind === 'error') {
      d.fp.count(`tcp.name_${head.reason}`);
      abort(client, upstream);
      return;
    }
    host = head.host;
    replay = head.bytes;
  }
  const v = d.fp.named(opened, host);
  if (v.action === 'block') {
    d.fp.recordTcp(opened, 'policy-block', host);
    upstream.destroy();
    if (http) refuseWith(client, forbidden(v.rule));
    else client.destroy();
    return;
  }
  if (v.action === 'inspect' && d.nonTls === 'block') {
    d.fp.count('tcp.inspect_not_tls');
    abort(client, upstream);
    return;
  }
  forward(client, upstream, replay, first.serverBytes);
}

type HeadRead = { kind: 'done'; host: string | null; bytes: Buffer } | { kind: 'error'; reason: string };

/** Reads on until the request head ends (it began in `already`), within REQUEST_HEAD_TIMEOUT_MS. */
function readRequestHost(client: Duplex, already: Buffer): Promise<HeadRead> {
  const reader = new RequestHostReader();
  const chunks = [already];
  const first = reader.push(already);
  if (first.kind === 'done') return Promise.resolve({ kind: 'done', host: first.host, bytes: already });
  if (first.kind === 'error') return Promise.resolve(first);
  return new Promise((resolve) => {
    const done = (r: HeadRead): void => {
      clearTimeout(timer);
      client.pause();
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('close', onEnd);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const r = reader.push(chunk);
      if (r.kind === 'done') done({ kind: 'done', host: r.host, bytes: Buffer.concat(chunks) });
      else if (r.kind === 'error') done(r);
    };
    const onEnd = (): void => done({ kind: 'error', reason: 'closed_in_request_head' });
    const timer = setTimeout(() => done({ kind: 'error', reason: 'request_head_timeout' }), REQUEST_HEAD_TIMEOUT_MS);
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('close', onEnd);
    client.resume();
  });
}

/** The bytes read so far go on first (the client's upstream, the server's greeting back), then both ways untouched. */
function forward(client: Duplex, upstream: Socket, fromClient: Buffer, fromServer: Buffer): void {
  if (fromClient.length > 0) upstream.write(fromClient);
  if (fromServer.length > 0) client.write(fromServer);
  relay(client, upstream, {});
}

function abort(client: Duplex, upstream: Socket): void {
  client.destroy();
  upstream.destroy();
}

/** What a plain HTTP client blocked by its Host sees: a page that says so, not a broken connection. */
function forbidden(rule: string): Buffer {
  const body = `Blocked by the company's network policy (rule ${rule}).\n`;
  return Buffer.from(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
