// Every record type a per-user log can hold; docs/log-schema.json describes
// each one's fields (test/unit/vpn/logs/schema.test.ts keeps the two, and the
// types the source writes, equal).
export const RECORD_TYPES = [
  'flow', 'flow_end', 'http', 'tls_upstream_rejected', 'tls_client_rejected', 'tls_pinned', 'tls_bypass', 'tls_bypass_refused',
  'tls_blocked', 'tls_revocation_soft_fail', 'tls_mint_failed', 'tls_mtls_learned', 'non_tls', 'session', 'dns', 'egress_denied', 'policy', 'flow_refused',
] as const;

export type RecordType = (typeof RECORD_TYPES)[number];
