// What the inspection engine asks of policy for one flow, and the fixed list
// of reasons a flow is not decrypted. The engine knows no rules: the
// concentrator's wiring (vpn/flow_policy) hands it one FlowPolicyHook per
// flow, built from policy/'s decision. Without a hook every TLS flow is
// inspected and a flow that is not TLS follows tls.nonTls.

import type { ClientHelloInfo } from './client_hello';

/**
 * Why a flow on an inspected port was not decrypted (README, "Per-user
 * logs"): a policy rule (by hosts or without a name: policy-bypass; by a
 * category: category), a pinned host (learned or approved: pinned-learned;
 * on the shipped list: pinned-listed), a server that demands a client
 * certificate (mtls), an Encrypted ClientHello the client would not fall back
 * from (ech), a bypass of a flow without SNI (no-sni), an upstream refused by
 * validation (upstream-cert-error:<reason>), a client that broke the
 * handshake (protocol-error), or a flow that is not TLS (non-tls).
 */
export type UndecryptedReason =
  | 'policy-bypass' | 'category' | 'pinned-learned' | 'pinned-listed' | 'mtls' | 'ech' | 'no-sni'
  | `upstream-cert-error:${string}` | 'protocol-error' | 'non-tls';

/** The reasons without a sub-reason, as documented. */
export const UNDECRYPTED_REASONS = [
  'policy-bypass', 'category', 'pinned-learned', 'pinned-listed', 'mtls', 'ech', 'no-sni', 'upstream-cert-error', 'protocol-error', 'non-tls',
] as const;

export const upstreamCertError = (reason: string): UndecryptedReason => `upstream-cert-error:${reason}`;

/** What policy decided for a TLS flow once its ClientHello was read. */
export type TlsDecision =
  | { action: 'inspect' }
  | { action: 'block' }
  | {
      /** Relayed undecrypted. */
      action: 'bypass';
      reason: UndecryptedReason;
      /**
       * True when a name decided it (hosts, categories, a pinned list): the
       * flow is relayed raw only once the destination proved that name
       * (bypass.ts). False when a rule without names decided it: no
       * client-written name was involved, the flow is relayed as it is.
       */
      verify: boolean;
      /** When the destination cannot prove the name: what the flow would get without it. */
      unverified: 'inspect' | 'block';
    };

/** What to do with a flow that is not TLS. */
export type NonTlsDecision = 'block' | 'allow' | 'nonTls';

export interface FlowPolicyHook {
  /** The ClientHello was read: decide (the hook may also set the flow's `rule` and `action`). */
  tls(hello: ClientHelloInfo): TlsDecision;
  /** The first bytes are not TLS: refuse, relay as is (an `allow`), or apply tls.nonTls (`inspect`, `bypass`). */
  nonTls(): NonTlsDecision;
  /** Once per flow that ended without being decrypted. Must not throw. */
  undecrypted?(reason: UndecryptedReason, host: string | null): void;
}
