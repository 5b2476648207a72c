// Malformed input on the packet path is a value, not an exception: every
// parser returns a WireError whose `reason` keys a drop counter.

export type WireReason =
  | 'truncated'
  | 'bad_version'
  | 'bad_header_len'
  | 'bad_total_len'
  | 'bad_payload_len'
  | 'bad_length'
  | 'bad_port'
  | 'bad_checksum'
  | 'bad_option'
  | 'bad_ext_header'
  | 'bad_routing_header'
  | 'fragment'
  | 'unsupported';

/**
 * One frozen instance per reason, so a flood of malformed packets costs no
 * allocation; compare with `isWireError`, count by `reason`.
 */
export class WireError {
  private static readonly instances = new Map<WireReason, WireError>();

  private constructor(readonly reason: WireReason) {
    Object.freeze(this);
  }

  static of(reason: WireReason): WireError {
    let e = WireError.instances.get(reason);
    if (e === undefined) {
      e = new WireError(reason);
      WireError.instances.set(reason, e);
    }
    return e;
  }

  toString(): string {
    return `WireError(${this.reason})`;
  }
}

export function wireError(reason: WireReason): WireError {
  return WireError.of(reason);
}

export function isWireError(x: unknown): x is WireError {
  return x instanceof WireError;
}
