// Builders for packet-by-packet endpoint tests.
import { ACK, SYN, TcpOptions, TcpRepr, TcpReprInit } from '../../../../netstack/wire/tcp';
import { TcpEndpoint, TcpEndpointOptions } from '../../../../netstack/tcp/endpoint';

export const CLIENT_PORT = 40000;
export const SERVER_PORT = 443;
export const CLIENT_ISN = 1000;
export const SERVER_ISN = 5000;

export function seg(fields: Partial<TcpReprInit> & { seq: number }): TcpRepr {
  return new TcpRepr({
    srcPort: CLIENT_PORT,
    dstPort: SERVER_PORT,
    ack: 0,
    flags: ACK,
    window: 65535,
    urgent: 0,
    options: {},
    payload: Buffer.alloc(0),
    ...fields,
    seq: fields.seq >>> 0,
  });
}

export function synSeg(options: TcpOptions = {}, seq = CLIENT_ISN, window = 65535): TcpRepr {
  return seg({ seq, flags: SYN, window, options });
}

export function bytes(n: number, fill = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (fill + i) & 0xff;
  return b;
}

export interface Flow {
  ep: TcpEndpoint;
  /** next client sequence number */
  cseq: number;
  /** server ISN + 1: first server data byte */
  sseq: number;
}

export const BASE_OPTS: TcpEndpointOptions = { mss: 1000, isn: SERVER_ISN, tsOffset: 0, msl: 1000 };

/**
 * Completes a handshake. By default no options are negotiated, so the client
 * MSS defaults to 536; pass { mss: 1000 } to use full segments.
 */
export function establish(options: TcpOptions = { mss: 1000 }, opts: Partial<TcpEndpointOptions> = {},
  clientIsn = CLIENT_ISN, clientWindow = 65535): Flow {
  const all = { ...BASE_OPTS, ...opts };
  const ep = TcpEndpoint.fromSyn(synSeg(options, clientIsn, clientWindow), 0, all);
  ep.accept(0);
  const synAck = ep.drainOutput()[0];
  const cseq = (clientIsn + 1) >>> 0;
  const ackOpts: TcpOptions = synAck.options.timestamp ? { timestamp: { value: 2, echo: synAck.options.timestamp.value } } : {};
  ep.onSegment(seg({ seq: cseq, ack: (synAck.seq + 1) >>> 0, window: clientWindow, options: ackOpts }), 1);
  ep.drainOutput();
  ep.drainEvents();
  return { ep, cseq, sseq: (synAck.seq + 1) >>> 0 };
}

export function payloadOf(segs: TcpRepr[]): Buffer {
  return Buffer.concat(segs.map((s) => s.payload));
}
