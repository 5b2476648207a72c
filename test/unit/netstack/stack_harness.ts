// Test harness: a NetStack whose output goes where the concentrator's loop
// sends it, to callbacks the tests record: packets to toClient, events to
// onFlowEnd / onEgressDenied / onIncident / onBudgetRefusal. Like the loop,
// it takes the output after every call and whenever the stack says output is
// waiting, and empties it even when a callback throws. With `recyclePackets`,
// it then lets the stack reuse the packets' memory, as the loop does: a sink
// must read a packet when it gets it (copy what it keeps).
import { EgressGuard, NetStack, type BudgetRefusalRecord, type EgressDenial, type FlowOwner, type FlowRecord, type NetStackOptions, type StackIncident, type StackOutput } from '../../../netstack';
import { IpAddress, IpCidr } from '../../../netstack/wire';

export interface StackSinks {
  toClient?(packet: Buffer): void;
  /** Recycle the output's packets once the sinks had them (NetStack.recyclePackets), as the concentrator does. */
  recyclePackets?: boolean;
  onFlowEnd?(r: FlowRecord): void;
  onEgressDenied?(d: EgressDenial): void;
  onIncident?(i: StackIncident): void;
  onBudgetRefusal?(r: BudgetRefusalRecord): void;
}

class HarnessStack extends NetStack {
  constructor(opts: NetStackOptions, private readonly sinks: StackSinks, self: { stack?: HarnessStack }) {
    super({ ...opts, onOutput: () => self.stack?.take() });
  }

  override receive(packet: Buffer, owner: FlowOwner, now: number): StackOutput {
    return this.take(super.receive(packet, owner, now));
  }

  override tick(now: number): StackOutput {
    return this.take(super.tick(now));
  }

  override endBatch(now: number): StackOutput {
    return this.take(super.endBatch(now));
  }

  override closeFlowsOf(ownerId: string, reason: string, now: number): { tcp: number; udp: number } {
    const closed = super.closeFlowsOf(ownerId, reason, now);
    this.take();
    return closed;
  }

  override close(now: number): StackOutput {
    return this.take(super.close(now));
  }

  take(out: StackOutput = this.output): StackOutput {
    const s = this.sinks;
    try {
      for (const p of out.packets) s.toClient?.(p);
      for (const e of out.events) {
        if (e.type === 'flow_end') s.onFlowEnd?.(e.record);
        else if (e.type === 'egress_denied') s.onEgressDenied?.(e.denial);
        else if (e.type === 'incident') s.onIncident?.(e.incident);
        else s.onBudgetRefusal?.(e.record);
      }
    } finally {
      out.clear();
    }
    if (s.recyclePackets === true) this.recyclePackets();
    return out;
  }
}

/** A NetStack driven as the concentrator drives it, its output handed to `sinks`. */
export function stackWithSinks(opts: Omit<NetStackOptions, 'onOutput'> & StackSinks): NetStack {
  const { toClient, recyclePackets, onFlowEnd, onEgressDenied, onIncident, onBudgetRefusal, ...options } = opts;
  const self: { stack?: HarnessStack } = {};
  self.stack = new HarnessStack(options, { toClient, recyclePackets, onFlowEnd, onEgressDenied, onIncident, onBudgetRefusal }, self);
  return self.stack;
}

/** The lab's concentrator: 10.77.0.1 in the tunnel pool 10.77.0.0/24, its guard, and room for descriptors. */
export function labStackBase(): Pick<NetStackOptions, 'localAddresses' | 'guard' | 'fds'> {
  const self = IpAddress.parse('10.77.0.1');
  return {
    localAddresses: [self],
    guard: new EgressGuard({ tunnelAddresses: [self], tunnelPools: [IpCidr.parse('10.77.0.0/24')], listener: null }),
    fds: { hasRoom: () => true },
  };
}
