// Routed mode wired into the concentrator (DESIGN.md, egress): a TUN device
// of our addon, the host set up around it (routed/host.ts), and the split of
// tunnel traffic between the userspace stack and the kernel
// (netstack/egress/tun_egress.ts), with the policy asked in one place
// (policy_gate.ts).
import { getSystemErrorMap } from 'node:util';
import { TunDevice, TunOpenError } from '../../netstack/tun';
import { TunEgress, type EgressGuard, type FlowOwner, type PolicyBlock } from '../../netstack';
import { IpAddress } from '../../netstack/wire';
import { compilePolicy, type Policy } from '../../policy';
import type { Config } from '../config';
import type { Logger } from '../process';
import { defaultHostIo, HostSetupError, removeRoutedLeftovers, RoutedHost, type HostChanges, type HostIo, type RoutedState } from './host';
import { hostPlan, type RoutedHostPlan } from './plan';
import type { EgressStatus } from './describe';
import { routedPolicy } from './policy_gate';

export { removeRoutedLeftovers, defaultHostIo, HostSetupError, ROUTED_STATE_FILE, type HostIo, type RoutedState } from './host';
export { hostPlan, nftRuleset, ipCommands, FORWARDING_SYSCTLS, NFT_TABLE, type RoutedHostPlan } from './plan';
export { routedPolicy, decideOtherProtocol } from './policy_gate';
export { describeEgress, type EgressStatus } from './describe';

export interface RoutedEgressOptions {
  dataDir: string;
  config: Config;
  serverV4: string;
  serverV6: string;
  ipv4Pool: string;
  ipv6Pool: string;
  guard: EgressGuard;
  /**
   * The policy new packets are decided by (a reload swaps it). Default: the
   * config's policy, compiled once here, until the concentrator holds one
   * PolicyHolder for every path.
   */
  policy?: () => Policy;
  toClient(packet: Buffer): void;
  /** Sends a packet to the peer owning its destination (cryptokey routing); false when none does. */
  toPeer(packet: Buffer): boolean;
  onBlocked(b: PolicyBlock): void;
  log: Logger;
  /** The host's commands and sysctls (tests pass fakes). */
  io?: HostIo;
}

export class RoutedEgress {
  private constructor(
    private readonly tun: TunDevice,
    private readonly host: RoutedHost,
    private readonly split: TunEgress,
    private readonly plan: RoutedHostPlan,
    private readonly changes: HostChanges,
    private readonly log: Logger,
  ) {}

  /**
   * Opens the TUN and sets the host up. Throws an error whose message says
   * what to do (no /dev/net/tun, no CAP_NET_ADMIN, `ip` or `nft` missing or
   * failing); whatever was changed by then is undone first.
   */
  static start(opts: RoutedEgressOptions): RoutedEgress {
    const { config } = opts;
    const plan = hostPlan({ tun: config.egress.tun.name, mtu: config.mtu, serverV4: opts.serverV4, serverV6: opts.serverV6, ipv4Pool: opts.ipv4Pool, ipv6Pool: opts.ipv6Pool, nat: config.egress.nat });
    let self: RoutedEgress | null = null;
    const split = new TunEgress({
      localAddresses: [IpAddress.parse(opts.serverV4), IpAddress.parse(opts.serverV6)],
      guard: opts.guard,
      blockedUdpPorts: config.tls.blockQuic ? config.tls.inspectPorts : [],
      decide: routedPolicy(opts.policy ?? compiledOnce(config), config.tls.inspectPorts),
      writeTun: (packets, count) => self?.tun.write(packets, count) ?? 0,
      toClient: opts.toClient,
      toPeer: opts.toPeer,
      onBlocked: opts.onBlocked,
    });
    // The TUN first: while another concentrator runs with it, opening it fails (busy), so the
    // leftovers removed next are a dead run's, never a live one's.
    const tun = openTun(plan.tun, split, opts.log);
    const io = opts.io ?? defaultHostIo(opts.dataDir);
    const host = new RoutedHost(io, plan);
    let changes: HostChanges;
    try {
      reportLeftovers(removeRoutedLeftovers(io), opts.log);
      changes = host.setUp();
    } catch (err) {
      tun.close().catch(() => undefined);
      throw err;
    }
    self = new RoutedEgress(tun, host, split, plan, changes, opts.log);
    return self;
  }

  /** A packet from a tunnel client: true when it was routed into the TUN or blocked; false when the stack takes it. */
  take(packet: Buffer, owner: FlowOwner): boolean {
    return this.split.take(packet, owner);
  }

  get counters(): Record<string, number> {
    return this.split.counters;
  }

  get tunCounters(): Record<string, number> {
    return this.tun.counters;
  }

  status(): EgressStatus {
    const { tun, mtu, addresses, pools, nat } = this.plan;
    return { mode: 'routed', interface: tun, mtu, addresses, pools, nat, nftTable: this.changes.nftTable, forwarding: this.changes.forwarding };
  }

  /** Closes the TUN (its addresses and routes go with it), then removes the table and restores the sysctls. */
  async close(): Promise<void> {
    this.split.flush();
    await this.tun.close();
    const failed = this.host.tearDown();
    for (const f of failed) this.log.error({ err: f }, 'routed mode: could not undo a host change; the next start retries');
  }
}

function openTun(name: string, split: TunEgress, log: Logger): TunDevice {
  let tun: TunDevice;
  try {
    tun = TunDevice.open({
      name,
      onBatch: (batch) => {
        for (let i = 0; i < batch.count; i++) split.fromTun(batch.packet(i));
      },
      onError: (err) => log.error({ err: err.message }, `routed mode: TUN ${name}: ${err.message}`),
    });
  } catch (err) {
    if (!(err instanceof TunOpenError)) throw err;
    // Routed mode needs the capability for ip, nft and the sysctls too, so a persistent TUN made for a user is no way around it.
    if (err.reason === 'not_permitted') {
      throw new HostSetupError(`egress.mode routed: routed mode needs root or CAP_NET_ADMIN to create TUN ${name}, configure it with ip and nft and turn forwarding on (${err.syscall}: ${errnoName(err.errno)}): run as root or grant the capability (AmbientCapabilities=CAP_NET_ADMIN in the systemd unit), or set egress.mode: socket`);
    }
    throw new HostSetupError(`egress.mode routed: ${err.message}; or set egress.mode: socket`);
  }
  if (!tun.created) {
    tun.close().catch(() => undefined);
    throw new HostSetupError(`egress.mode routed: interface "${name}" already exists (a persistent TUN): routed mode creates its own and removes it on exit; delete it (ip link del ${name}) or set egress.tun.name to another name`);
  }
  return tun;
}

function compiledOnce(config: Config): () => Policy {
  const policy = compilePolicy(config);
  return () => policy;
}

/**
 * A socket-mode start after a routed-mode run that was killed: the nftables
 * table and sysctls it left are removed (routed/host.ts). A failure is a
 * warning, since socket mode needs no privilege and changes nothing on the host.
 */
export function cleanUpRoutedLeftovers(dataDir: string, log: Logger, io: HostIo = defaultHostIo(dataDir)): void {
  try {
    reportLeftovers(removeRoutedLeftovers(io), log);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'routed mode left changes on this host that socket mode cannot remove');
  }
}

function reportLeftovers(left: RoutedState | null, log: Logger): void {
  if (left !== null) log.warn({ pid: left.pid, tun: left.tun, nftTable: left.nftTable, sysctls: left.sysctls }, 'routed mode: removed what an earlier run (killed?) left on the host');
}

function errnoName(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[0] ?? `errno ${errno}`;
}
