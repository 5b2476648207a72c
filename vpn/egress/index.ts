// The egress guard wired into the concentrator (the trust boundary of
// DESIGN.md): the boundary every outbound path asks, and the per-user
// egress_denied records of its refusals.
export { EgressBoundary, type EgressBoundaryOptions } from './boundary';
export { EgressDenials, DENIAL_RECORDS_BURST, DENIAL_RECORDS_PER_SECOND, type DenialPath } from './denials';
