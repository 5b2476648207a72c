// The inspection engine's interface, after mitmproxy's sans-IO layers: a
// flow's machine (flow.ts) is fed events, each with the current time, and
// answers with commands. Nothing in the machine touches a socket, a timer or
// a TLS library: the stream adapter (streams.ts) owns the client's stream,
// the upstream socket, the two node:tls sockets and the timers, executes the
// commands in order and turns what happens on the streams into events.
//
// Time is wall-clock ms (minted leaves, validity checks and persisted pins
// are about calendar time), read by the adapter and passed in.

import type { X509Certificate } from 'node:crypto';
import type { RelayResult, RelayTap } from '../../netstack';
import type { BypassTarget, ProbeResult } from '../bypass';
import type { UndecryptedReason } from '../flow_policy';
import type { MintedLeaf } from '../mint';
import type { ClientHandshakeEnd } from '../pinning';
import type { UpstreamError } from '../upstream';

export type Side = 'client' | 'server';

/** A flow's timers: the ClientHello deadline, the wait for a sharper protocol guess, the client's TLS handshake deadline. */
export type FlowTimer = 'client_hello' | 'guess' | 'client_handshake';

/** The upstream TLS handshake and its validation (mitm/upstream secureUpstream), as the adapter saw them end. */
export type UpstreamTlsResult = {
  /** The revocation checks soft mode let through, each with its reason. */
  softFails: string[];
  /** The negotiated ALPN protocol, when a session was made. */
  alpn: string | null;
} & (
  | {
      ok: true;
      /** The validated leaf. */
      leaf: X509Certificate;
      /** The server already sent certificate_required (TLS 1.3, after our Finished). */
      certificateRequired: boolean;
    }
  | {
      ok: false;
      error: UpstreamError;
      detail: string;
      /** The TLS error code when the handshake failed. */
      code?: string;
      /** The leaf the server presented, when the handshake got that far. */
      leaf?: X509Certificate;
      /** The session is still open (the handshake completed, the certificate was refused). */
      sessionOpen: boolean;
    }
);

export type ClientTlsResult = { ok: true } | { ok: false; end: ClientHandshakeEnd };

export type FlowEvent =
  /** Raw bytes from the client, while reading (before any TLS). */
  | { type: 'client_data'; data: Buffer }
  /** The client's FIN, while reading. */
  | { type: 'client_end' }
  /** The client's stream closed while reading, or was gone when the flow began. */
  | { type: 'client_close' }
  /** Raw bytes from the upstream, while reading. */
  | { type: 'server_data'; data: Buffer }
  | { type: 'server_end' }
  /** A stream reported an error outside the relay (counted; the stream's own ending follows). */
  | { type: 'stream_error'; side: Side }
  | { type: 'timer'; timer: FlowTimer }
  /** The answer to `probe`. */
  | { type: 'probe_done'; result: ProbeResult }
  /** The answer to `start_upstream_tls`. */
  | { type: 'upstream_tls'; result: UpstreamTlsResult }
  /** The answer to `scan_client_certificate_demand`. */
  | { type: 'client_certificate_demand'; demanded: boolean }
  /** The answer to `start_client_tls`. */
  | { type: 'client_tls'; result: ClientTlsResult }
  /** The validated upstream session reported the server's certificate_required alert (TLS 1.3 may send it after our Finished). */
  | { type: 'upstream_certificate_required' }
  /** The first decrypted bytes from the client in the relay. */
  | { type: 'relay_client_data' }
  /** The relay's tap threw; it is detached. */
  | { type: 'relay_tap_error' }
  | { type: 'relay_end'; result: RelayResult }
  /** The adapter could not carry out a command (a bug, never the network): the flow ends as internal_error. */
  | { type: 'fault'; detail: string };

export type Command =
  /** Read both raw streams (on), or pause them and stop reading (off). */
  | { type: 'read'; on: boolean }
  /** Fire `timer` at wall-clock `at`, replacing an armed one of that name. */
  | { type: 'arm'; timer: FlowTimer; at: number }
  | { type: 'disarm'; timer: FlowTimer }
  /** One record in the flow's user's log. */
  | { type: 'record'; recordType: string; fields: Record<string, unknown> }
  /** Tell the flow's policy hook why the flow ended undecrypted. */
  | { type: 'undecrypted'; reason: UndecryptedReason; sni: string | null }
  /** Ask the destination to prove a name (the bypass gate): answered by probe_done. */
  | { type: 'probe'; target: BypassTarget }
  /** TLS over the upstream socket, offered as the client offered it, then validated: answered by upstream_tls. */
  | { type: 'start_upstream_tls'; servername: string | null; alpn: string[] }
  /** A TLS 1.2 connection of our own, to see whether the server asks for a client certificate: answered by client_certificate_demand. */
  | { type: 'scan_client_certificate_demand'; servername: string | null; alpn: string[] }
  /** Finish the client's handshake as its server with `leaf`, after replaying the bytes already read: answered by client_tls. */
  | { type: 'start_client_tls'; leaf: MintedLeaf; alpn: string | null; replay: Buffer }
  | { type: 'write'; side: Side; data: Buffer }
  /** Send the client `data` (an alert) and end; its remaining bytes are read and dropped; destroyed after lingerMs. */
  | { type: 'refuse'; data: Buffer; lingerMs: number }
  /** Tear down a stream: the raw ones or the TLS sockets over them. */
  | { type: 'destroy'; stream: Side | 'client_tls' | 'server_tls' }
  /** Relay raw bytes between the two raw streams, or decrypted bytes between the two TLS sockets: ends with relay_end. */
  | { type: 'relay'; layer: 'raw' | 'tls'; tap: RelayTap | null }
  /** After the decrypted relay: a raw stream is ended and let flush (destroyed after lingerMs), or destroyed at once. */
  | { type: 'close_raw'; side: Side; clean: boolean; lingerMs: number };
