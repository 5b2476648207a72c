// The host's own interface addresses, for the egress guard: read from
// os.networkInterfaces() and re-read every few seconds, since addresses come
// and go (DHCP, a VPN of the host, an admin adding one) and the kernel has no
// change notification that Node exposes. The edge for guard.ts.
//
// os.networkInterfaces() leaves out interfaces that are up without carrier
// (libuv lists only those up and running), though the kernel still delivers
// to their addresses: docker0 with no container is one. On Linux the kernel's
// own tables are read too: the local routes of /proc/net/fib_trie (which also
// make a whole prefix local, as 127.0.0.0/8 or a prefix put on lo) and every
// address in /proc/net/if_inet6.
import { closeSync, openSync, readSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { IpAddress, IpCidr } from '../wire';

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

/** The prefixes of the kernel's LOCAL routes in /proc/net/fib_trie text (IPv4). */
export function parseFibTrieLocal(text: string): IpCidr[] {
  const out = new Map<string, IpCidr>();
  let leaf: string | null = null;
  for (const line of text.split('\n')) {
    const l = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (l) {
      leaf = l[1];
      continue;
    }
    const e = /^\s*\/(\d+) \S+ (\S+)/.exec(line);
    if (e && leaf !== null && e[2] === 'LOCAL') {
      const address = IpAddress.tryParse(leaf);
      const len = Number(e[1]);
      if (address !== null && len <= 32) {
        const c = IpCidr.of(address, len);
        out.set(c.toString(), c);
      }
    }
  }
  return [...out.values()];
}

/** Every address in /proc/net/if_inet6 text, as a host route. */
export function parseIfInet6(text: string): IpCidr[] {
  const out: IpCidr[] = [];
  for (const line of text.split('\n')) {
    const hex = /^([0-9a-f]{32})\s/.exec(line)?.[1];
    if (hex !== undefined) out.push(IpCidr.of(IpAddress.fromBytes(Buffer.from(hex, 'hex')), 128));
  }
  return out;
}

export type LocalRouteReader = () => IpCidr[];

/**
 * /proc/net/fib_trie lists the main routing table too: on a host that holds
 * a full Internet table it runs to tens of megabytes. Past this, the kernel's
 * tables are not read (the interfaces alone, as without /proc).
 */
export const MAX_PROC_TABLE_BYTES = 4 * 1024 * 1024;

/** A /proc file's text, refused past MAX_PROC_TABLE_BYTES (its size is not known before reading). */
export function readProcCapped(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_PROC_TABLE_BYTES) throw new RangeError(`${path} is over ${MAX_PROC_TABLE_BYTES} bytes`);
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

/** What the kernel delivers locally, from /proc (none where /proc has no such files, or they are too large). */
export function kernelLocalCidrs(read: (path: string) => string = readProcCapped): IpCidr[] {
  const out: IpCidr[] = [];
  for (const [path, parse] of [['/proc/net/fib_trie', parseFibTrieLocal], ['/proc/net/if_inet6', parseIfInet6]] as const) {
    try {
      out.push(...parse(read(path)));
    } catch {
      // Not Linux, or /proc not mounted: the interfaces alone.
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
 * poll finds them changed: the interfaces' addresses with their prefixes, and
 * the prefixes the kernel delivers locally whole. A failing read keeps the
 * last known set. Given `read` (a test's interfaces), the kernel's tables are
 * read only if `readLocal` is given too.
 */
export function watchHostAddresses(
  onChange: (cidrs: IpCidr[], local: IpCidr[]) => void,
  opts: { read?: InterfaceReader; readLocal?: LocalRouteReader; intervalMs?: number; onError?: (err: Error) => void } = {},
): HostAddressWatcher {
  const read = opts.read ?? networkInterfaces;
  const readLocal = opts.readLocal ?? (opts.read === undefined ? kernelLocalCidrs : (): IpCidr[] => []);
  let last = '';
  const poll = (): boolean => {
    let cidrs: IpCidr[];
    let local: IpCidr[];
    try {
      cidrs = hostInterfaceCidrs(read);
      local = readLocal();
    } catch (err) {
      opts.onError?.(err as Error);
      return false;
    }
    const text = `${cidrs.map((c) => c.toString()).sort().join(',')} ${local.map((c) => c.toString()).sort().join(',')}`;
    if (text === last) return false;
    last = text;
    onChange(cidrs, local);
    return true;
  };
  poll();
  const timer = setInterval(poll, opts.intervalMs ?? HOST_ADDRESS_POLL_MS);
  timer.unref();
  return { poll, stop: () => clearInterval(timer) };
}
