// The egress guard wired into the concentrator: built from the config
// (egress.allow, egress.deny, the WireGuard listener), fed the host's
// addresses as they change, and handed to every outbound path that does not
// pass through the stack: the default DNS upstreams, the concentrator's own
// fetches for a flow (AIA, OCSP), and WireGuard roaming.
import { parseHostPort, type Config } from '../config';
import type { DnsServer } from '../dns';
import type { Logger } from '../process';
import type { Endpoint } from '../protocol';
import { EgressDenials } from './denials';
import { EgressGuard, describeVerdict, monotonicNow, watchHostAddresses, type EgressDenial, type HostAddressWatcher, type InterfaceReader, type LocalRouteReader } from '../../netstack';
import { IpAddress, IpCidr, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP } from '../../netstack/wire';
import { createHttpFetch, type HttpFetcher, type RecordSink } from '../../mitm';
import type { EgressVerdict } from '../../netstack';

export interface EgressBoundaryOptions {
  config: Config;
  tunnelAddresses: IpAddress[];
  tunnelPools: IpCidr[];
  /** Where egress_denied records go (the per-user logs). */
  records: RecordSink;
  log: Logger;
  /** os.networkInterfaces by default. */
  readInterfaces?: InterfaceReader;
  /** The kernel's local routes (/proc) by default; with readInterfaces given, none unless this is given too. */
  readLocalRoutes?: LocalRouteReader;
  now?: () => number;
}

export class EgressBoundary {
  readonly guard: EgressGuard;
  readonly denials: EgressDenials;
  private readonly watcher: HostAddressWatcher;

  constructor(private readonly opts: EgressBoundaryOptions) {
    const { config } = opts;
    this.guard = new EgressGuard({
      tunnelAddresses: opts.tunnelAddresses,
      tunnelPools: opts.tunnelPools,
      listener: { address: config.listenAddress ? IpAddress.parse(config.listenAddress) : null, port: config.listenPort },
      allow: config.egress.allow.map((c) => IpCidr.parse(c)),
      deny: config.egress.deny.map((c) => IpCidr.parse(c)),
      publicAddresses: endpointAddresses(config.endpoint),
    });
    this.denials = new EgressDenials(opts.records, opts.now ?? monotonicNow);
    this.watcher = watchHostAddresses(
      (cidrs, local) => {
        this.guard.setHostInterfaces(cidrs, local);
        opts.log.debug({ addresses: cidrs.map(String), local: local.map(String) }, 'host addresses (refused as egress destinations)');
      },
      { read: opts.readInterfaces, readLocal: opts.readLocalRoutes, onError: (err) => opts.log.warn({ err: err.message }, 'cannot read the host addresses; keeping the last known ones') },
    );
  }

  get counters(): Record<string, number> {
    return this.denials.counters;
  }

  /** For NetStackOptions.onEgressDenied. */
  readonly onStackDenial = (d: EgressDenial): void => {
    this.denials.record(d.owner.user, d.owner.id, 'tunnel', d.protocol, d.dst, d.dstPort, d.verdict);
  };

  /**
   * The resolvers found in /etc/resolv.conf that the guard allows. A refused
   * one (typically a loopback stub like 127.0.0.53) is dropped with a warning:
   * naming it in dns.upstream, or lifting it with egress.allow, is the
   * admin's call, never a client's.
   */
  permittedResolvers(found: DnsServer[]): DnsServer[] {
    return found.filter((s) => {
      const addr = IpAddress.tryParse(s.host);
      const verdict = addr === null ? null : this.guard.check(addr, IP_PROTOCOL_UDP, s.port);
      if (verdict === null) return true;
      this.opts.log.warn(
        { resolver: s.host, reason: verdict.reason },
        `DNS resolver ${s.host} from /etc/resolv.conf is not used: ${describeVerdict(verdict, s.host)}, which tunnel traffic may not reach. ` +
          `Set dns.upstream to the resolvers to use (an explicit entry is trusted as is), or add ${s.host}/${addr?.family === 6 ? 128 : 32} to egress.allow.`,
      );
      return false;
    });
  }

  /** The HTTP fetcher for AIA and OCSP on behalf of one user's flow: refusals land in that user's log. */
  fetcherFor(user: string, peer: string): HttpFetcher {
    return this.checkedFetcher((address, port, verdict) => this.denials.record(user, peer, 'fetch', IP_PROTOCOL_TCP, address, port, verdict));
  }

  /**
   * For certificate fetches made for no single flow (a bypass probe whose
   * verdict serves every user): refusals are counted and go to the
   * concentrator's log.
   */
  readonly sharedFetcher: HttpFetcher = this.checkedFetcher((address, port, verdict) => {
    this.denials.count(verdict);
    this.opts.log.info({ dst: address, dstPort: port, reason: verdict.reason, via: verdict.via }, 'egress refused a certificate fetch');
  });

  private checkedFetcher(onRefused: (address: string, port: number, verdict: EgressVerdict) => void): HttpFetcher {
    return createHttpFetch((address, port) => {
      const addr = IpAddress.tryParse(address);
      const verdict = addr === null ? null : this.guard.check(addr, IP_PROTOCOL_TCP, port);
      if (verdict === null) return null;
      onRefused(address, port, verdict);
      return describeVerdict(verdict, address);
    });
  }

  /** For DeviceOptions.acceptEndpoint: roaming never moves a peer to this host or loopback. */
  readonly acceptsEndpoint = (e: Endpoint): boolean => {
    const addr = IpAddress.tryParse(e.address.split('%')[0]);
    return addr === null || !this.guard.isSelf(addr);
  };

  stop(): void {
    this.watcher.stop();
  }
}

/** The address of the endpoint clients are given, when it is written as one (a name is not resolved here). */
function endpointAddresses(endpoint: string | undefined): IpAddress[] {
  const hp = endpoint === undefined ? null : parseHostPort(endpoint);
  const addr = hp === null ? null : IpAddress.tryParse(hp.host);
  return addr === null ? [] : [addr];
}
