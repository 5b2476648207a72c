/** Who a flow belongs to: the tunnel peer (id) and its user, for limits and records. */
export interface FlowOwner {
  readonly id: string;
  readonly user: string;
}

/**
 * The one flow-table key: owner plus 5-tuple (the protocol is implied by the
 * table). Addresses as latin1 keep it one cheap string per packet.
 */
export function flowKey(owner: FlowOwner, src: Buffer, srcPort: number, dst: Buffer, dstPort: number): string {
  return `${owner.id}|${src.toString('latin1')}|${srcPort}|${dst.toString('latin1')}|${dstPort}`;
}
