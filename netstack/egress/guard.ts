// The trust boundary between the tunnel and everything the concentrator can
// reach (DESIGN.md, "The trust boundary"): one classifier that every outbound
// path consults before a byte leaves. Sans-IO: the edge feeds it the host's
// interface addresses (host_addresses.ts); destinations come as packet bytes
// so the per-packet check allocates nothing.
//
// Precedence: the refusals no admin can lift (the WireGuard listener: a loop;
// the concentrator's tunnel addresses and the tunnel pools: local services and
// other peers, never egress) come first, then egress.deny, then egress.allow,
// then the built-in refusals. Every IPv4 rule also applies to the IPv6 forms
// that reach an IPv4 address: IPv4-mapped (a dual-stack socket sends it as
// IPv4), IPv4-compatible (RFC 4291 §2.5.5.1, deprecated) and NAT64 (RFC 6052,
// RFC 8215).
import { IpCidr, fixedIpv4Form, type IpAddress, type IpFamily } from '../wire';

export type EgressRefusal =
  | 'wireguard_listener'
  | 'tunnel_address'
  | 'peer_to_peer'
  | 'denied'
  | 'unspecified'
  | 'loopback'
  | 'link_local'
  | 'multicast'
  | 'broadcast'
  | 'host_address'
  | 'metadata';

export const EGRESS_REFUSALS: readonly EgressRefusal[] = [
  'wireguard_listener', 'tunnel_address', 'peer_to_peer', 'denied', 'unspecified', 'loopback', 'link_local', 'multicast', 'broadcast', 'host_address', 'metadata',
];

/**
 * Cloud instance metadata services outside the link-local ranges (169.254.169.254
 * is link-local already): AWS's IPv6 endpoint, Google Cloud's, Alibaba Cloud's
 * and Azure's WireServer. From the concentrator's socket they answer as to the
 * host itself (credentials of the instance's role, its configuration).
 */
const CLOUD_METADATA: readonly IpCidr[] = ['fd00:ec2::254/128', 'fd20:ce::254/128', '100.100.100.200/32', '168.63.129.16/32'].map((c) => IpCidr.parse(c));

/** The IPv6 form through which an IPv4 refusal was reached. */
export type EgressForm = 'ipv4_mapped' | 'ipv4_compatible' | 'nat64' | 'nat64_local';

export interface EgressVerdict {
  readonly reason: EgressRefusal;
  /** null when the address itself is refused, else the IPv6 form that embeds a refused IPv4 address. */
  readonly via: EgressForm | null;
}

export interface EgressListener {
  /** The bind address; null (or 0.0.0.0, ::) for every address of the host. */
  address: IpAddress | null;
  port: number;
}

export interface EgressGuardOptions {
  /** The concentrator's own tunnel addresses: answered locally, never egress. */
  tunnelAddresses: IpAddress[];
  /** The tunnel pools: other peers, never reachable through the concentrator. */
  tunnelPools: IpCidr[];
  /** The WireGuard UDP socket: egress to it would loop tunnel traffic into itself. */
  listener: EgressListener | null;
  /** Refused in addition to the built-in refusals (egress.deny); wins over allow. */
  deny?: IpCidr[];
  /** Lifts the built-in refusals (egress.allow), never the fixed ones. */
  allow?: IpCidr[];
  /** Every address of every host interface with its prefix (os.networkInterfaces). */
  hostInterfaces?: IpCidr[];
  /**
   * The concentrator's public address (the endpoint clients are given) when
   * no interface holds it: behind a 1:1 NAT that hairpins, it reaches the
   * host, so it counts as a host address and as the listener's.
   */
  publicAddresses?: IpAddress[];
}

const UDP = 17;
const ALLOWED = 'allow';
type PhaseResult = EgressRefusal | typeof ALLOWED | null;

const enum Phase {
  Fixed,
  Deny,
  Allow,
  BuiltIn,
}
const PHASES = [Phase.Fixed, Phase.Deny, Phase.Allow, Phase.BuiltIn] as const;

// One frozen verdict per (reason, form): the hot path returns these, never a new object.
const VERDICTS = Object.fromEntries(
  EGRESS_REFUSALS.map((reason) => [
    reason,
    Object.freeze({
      native: Object.freeze({ reason, via: null }),
      ipv4_mapped: Object.freeze({ reason, via: 'ipv4_mapped' }),
      ipv4_compatible: Object.freeze({ reason, via: 'ipv4_compatible' }),
      nat64: Object.freeze({ reason, via: 'nat64' }),
      nat64_local: Object.freeze({ reason, via: 'nat64_local' }),
    }),
  ]),
) as Record<EgressRefusal, Record<'native' | EgressForm, EgressVerdict>>;

/** At most four RFC 6052 readings of one address (64:ff9b:1::/48 with an unknown prefix length). */
const MAX_EMBEDDED = 4;

export class EgressGuard {
  private readonly tunnelAddresses: IpCidr[];
  private readonly pools: IpCidr[];
  private readonly deny: IpCidr[];
  private readonly allow: IpCidr[];
  private readonly listenerPort: number;
  /** The listener's address as a host route; null when it listens on every address. */
  private readonly listenerAddress: IpCidr | null;
  private hosts: IpCidr[] = [];
  private readonly publicHosts: IpCidr[];
  private broadcasts: IpCidr[] = [];
  // The IPv4 addresses embedded in the IPv6 address being checked (reused, never reallocated).
  private readonly embeddedBuf: Buffer[] = [];
  private readonly embeddedOff: number[] = [];
  private readonly embeddedForm: EgressForm[] = [];
  private readonly scratch: Buffer[] = [Buffer.alloc(4), Buffer.alloc(4)];

  constructor(opts: EgressGuardOptions) {
    this.tunnelAddresses = opts.tunnelAddresses.map(hostRoute);
    this.pools = [...opts.tunnelPools];
    this.deny = [...(opts.deny ?? [])];
    this.allow = [...(opts.allow ?? [])];
    this.listenerPort = opts.listener?.port ?? -1;
    const la = opts.listener?.address ?? null;
    this.listenerAddress = la === null || isUnspecified(la.bytes, 0, la.family) ? null : hostRoute(la);
    this.publicHosts = (opts.publicAddresses ?? []).map(hostRoute);
    for (let i = 0; i < MAX_EMBEDDED; i++) {
      this.embeddedBuf.push(this.scratch[0]);
      this.embeddedOff.push(0);
      this.embeddedForm.push('ipv4_mapped');
    }
    this.setHostInterfaces(opts.hostInterfaces ?? []);
  }

  /**
   * Replaces the host's interface addresses (and so their subnets' directed
   * broadcasts), and the prefixes the kernel delivers locally whole
   * (host_addresses.ts: its local routes, such as 127.0.0.0/8).
   */
  setHostInterfaces(ifaces: IpCidr[], localPrefixes: IpCidr[] = []): void {
    // Checked per packet: an address both an interface's and a local route's is one entry.
    const hosts = new Map<string, IpCidr>();
    for (const c of [...ifaces.map((i) => hostRoute(i.address)), ...localPrefixes, ...this.publicHosts]) hosts.set(c.toString(), c);
    this.hosts = [...hosts.values()];
    // RFC 3021: a /31 or /32 has no broadcast address.
    this.broadcasts = ifaces.filter((c) => c.family === 4 && c.prefixLength <= 30).map((c) => hostRoute(c.lastAddress));
  }

  check(addr: IpAddress, protocol: number, port: number): EgressVerdict | null {
    return this.checkBytes(addr.bytes, 0, addr.family, protocol, port);
  }

  /**
   * The verdict for a destination read straight from packet bytes; null allows it.
   * `protocol` is the IP protocol number, `port` the destination port (-1 without one).
   */
  checkBytes(buf: Buffer, off: number, family: IpFamily, protocol: number, port: number): EgressVerdict | null {
    const n = family === 6 ? this.collectEmbedded(buf, off) : 0;
    for (let p = 0; p < PHASES.length; p++) {
      const phase = PHASES[p];
      const r = this.phase(phase, buf, off, family, protocol, port);
      if (r === ALLOWED) return null;
      if (r !== null) return VERDICTS[r].native;
      for (let i = 0; i < n; i++) {
        const e = this.phase(phase, this.embeddedBuf[i], this.embeddedOff[i], 4, protocol, port);
        if (e === ALLOWED) return null;
        if (e !== null) return VERDICTS[e][this.embeddedForm[i]];
      }
    }
    return null;
  }

  /**
   * Loopback, unspecified, or an address of this host or of its tunnel, in
   * any form: what a WireGuard peer's endpoint must never become (a loop).
   * Not subject to egress.allow.
   */
  isSelf(addr: IpAddress): boolean {
    return this.isSelfBytes(addr.bytes, 0, addr.family);
  }

  /** isSelf for an address read straight from packet bytes (routed mode asks per packet). */
  isSelfBytes(buf: Buffer, off: number, family: IpFamily): boolean {
    const n = family === 6 ? this.collectEmbedded(buf, off) : 0;
    if (this.selfAt(buf, off, family)) return true;
    for (let i = 0; i < n; i++) if (this.selfAt(this.embeddedBuf[i], this.embeddedOff[i], 4)) return true;
    return false;
  }

  private selfAt(buf: Buffer, off: number, family: IpFamily): boolean {
    return isUnspecified(buf, off, family) || isLoopback(buf, off, family) || anyContains(this.hosts, buf, off, family) || anyContains(this.tunnelAddresses, buf, off, family);
  }

  private phase(phase: Phase, buf: Buffer, off: number, family: IpFamily, protocol: number, port: number): PhaseResult {
    switch (phase) {
      case Phase.Fixed:
        if (protocol === UDP && port === this.listenerPort && this.isListenerAddress(buf, off, family)) return 'wireguard_listener';
        if (anyContains(this.tunnelAddresses, buf, off, family)) return 'tunnel_address';
        if (anyContains(this.pools, buf, off, family)) return 'peer_to_peer';
        return null;
      case Phase.Deny:
        return anyContains(this.deny, buf, off, family) ? 'denied' : null;
      case Phase.Allow:
        return anyContains(this.allow, buf, off, family) ? ALLOWED : null;
      case Phase.BuiltIn:
        return this.builtIn(buf, off, family);
    }
  }

  private isListenerAddress(buf: Buffer, off: number, family: IpFamily): boolean {
    // The public addresses are among `hosts`; a listener bound to one address is reached through them too.
    if (this.listenerAddress !== null) return this.listenerAddress.containsBytes(buf, off, family) || anyContains(this.publicHosts, buf, off, family);
    return isUnspecified(buf, off, family) || isLoopback(buf, off, family) || anyContains(this.hosts, buf, off, family);
  }

  private builtIn(buf: Buffer, off: number, family: IpFamily): EgressRefusal | null {
    if (isUnspecified(buf, off, family)) return 'unspecified';
    if (isLoopback(buf, off, family)) return 'loopback';
    if (family === 4) {
      if (buf[off] === 169 && buf[off + 1] === 254) return 'link_local';
      if ((buf[off] & 0xf0) === 0xe0) return 'multicast';
      if (isLimitedBroadcast(buf, off) || anyContains(this.broadcasts, buf, off, 4)) return 'broadcast';
    } else {
      if (buf[off] === 0xfe && (buf[off + 1] & 0xc0) === 0x80) return 'link_local';
      if (buf[off] === 0xff) return 'multicast';
    }
    if (anyContains(CLOUD_METADATA, buf, off, family)) return 'metadata';
    return anyContains(this.hosts, buf, off, family) ? 'host_address' : null;
  }

  /** Finds the IPv4 addresses an IPv6 address leads to; returns how many. */
  private collectEmbedded(b: Buffer, o: number): number {
    const form = fixedIpv4Form(b, o);
    if (form !== null) return this.embed(0, b, o + 12, form);
    const nat64Local = b[o] === 0x00 && b[o + 1] === 0x64 && b[o + 2] === 0xff && b[o + 3] === 0x9b && b[o + 4] === 0x00 && b[o + 5] === 0x01;
    return nat64Local ? this.nat64Local(b, o) : 0;
  }

  /**
   * 64:ff9b:1::/48 (RFC 8215) is split by each operator with a prefix length
   * of its choice (/48, /56, /64 or /96, RFC 6052 §2.2): every reading is
   * checked. Readings in 0.0.0.0/8 are what the other lengths' zero padding
   * looks like, never a NAT64 destination, so they are skipped.
   */
  private nat64Local(b: Buffer, o: number): number {
    let n = 0;
    const [s48, s56] = this.scratch;
    s48[0] = b[o + 6]; s48[1] = b[o + 7]; s48[2] = b[o + 9]; s48[3] = b[o + 10];
    s56[0] = b[o + 7]; s56[1] = b[o + 9]; s56[2] = b[o + 10]; s56[3] = b[o + 11];
    if (s48[0] !== 0) n = this.embed(n, s48, 0, 'nat64_local');
    if (s56[0] !== 0) n = this.embed(n, s56, 0, 'nat64_local');
    if (b[o + 9] !== 0) n = this.embed(n, b, o + 9, 'nat64_local');
    if (b[o + 12] !== 0) n = this.embed(n, b, o + 12, 'nat64_local');
    return n;
  }

  private embed(i: number, buf: Buffer, off: number, form: EgressForm): number {
    this.embeddedBuf[i] = buf;
    this.embeddedOff[i] = off;
    this.embeddedForm[i] = form;
    return i + 1;
  }
}

/** "127.0.0.1 is loopback (via its IPv4-mapped form)": for error details and warnings. */
export function describeVerdict(v: EgressVerdict, dst: string): string {
  return v.via === null ? `${dst} is ${v.reason}` : `${dst} is ${v.reason} (${v.via})`;
}

function hostRoute(a: IpAddress): IpCidr {
  return IpCidr.of(a, a.family === 4 ? 32 : 128);
}

function anyContains(list: readonly IpCidr[], buf: Buffer, off: number, family: IpFamily): boolean {
  for (let i = 0; i < list.length; i++) if (list[i].containsBytes(buf, off, family)) return true;
  return false;
}

function zeros(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3: never a destination) and ::. */
function isUnspecified(b: Buffer, o: number, family: IpFamily): boolean {
  return family === 4 ? b[o] === 0 : zeros(b, o, o + 16);
}

function isLoopback(b: Buffer, o: number, family: IpFamily): boolean {
  return family === 4 ? b[o] === 127 : zeros(b, o, o + 15) && b[o + 15] === 1;
}

function isLimitedBroadcast(b: Buffer, o: number): boolean {
  return b[o] === 255 && b[o + 1] === 255 && b[o + 2] === 255 && b[o + 3] === 255;
}
