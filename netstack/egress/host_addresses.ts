// The host's own interface addresses, for the egress guard: read from
// os.networkInterfaces() and re-read every few seconds, since addresses come
// and go (DHCP, a VPN of the host, an admin adding one) and the kernel has no
// change notification that Node exposes. The edge for guard.ts.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { IpCidr } from '../wire';

export const HOST_ADDRESS_POLL_MS = 3000;

export type InterfaceReader = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Every address of every interface with its prefix; entries that do not parse are skipped. */
export function hostInterfaceCidrs(read: InterfaceReader = networkInterfaces): IpCidr[] {
  const out: IpCidr[] = [];
  for (const infos of Object.values(read())) {
    for (const info of infos ?? []) {
      // cidr is null when the netmask is not contiguous; the address alone is still ours.
      const text = info.cidr ?? info.address;
      try {
        out.push(IpCidr.parse(text.replace(/%[^/]*/, '')));
      } catch {
        // An address form the parser refuses (none known on Linux): nothing to match it with.
      }
    }
  }
  return out;
}

export interface HostAddressWatcher {
  /** Re-reads now; true when the set changed (and onChange was called). */
  poll(): boolean;
  stop(): void;
}

/**
 * Calls onChange with the current addresses at once, then again whenever a
 * poll finds them changed. A failing read keeps the last known set.
 */
export function watchHostAddresses(
  onChange: (cidrs: IpCidr[]) => void,
  opts: { read?: InterfaceReader; intervalMs?: number; onError?: (err: Error) => void } = {},
): HostAddressWatcher {
  const read = opts.read ?? networkInterfaces;
  let last = '';
  const poll = (): boolean => {
    let cidrs: IpCidr[];
    try {
      cidrs = hostInterfaceCidrs(read);
    } catch (err) {
      opts.onError?.(err as Error);
      return false;
    }
    const text = cidrs.map((c) => c.toString()).sort().join(',');
    if (text === last) return false;
    last = text;
    onChange(cidrs);
    return true;
  };
  poll();
  const timer = setInterval(poll, opts.intervalMs ?? HOST_ADDRESS_POLL_MS);
  timer.unref();
  return { poll, stop: () => clearInterval(timer) };
}
