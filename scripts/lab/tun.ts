// A TUN device of our addon inside a lab namespace, for tests and benchmarks:
// the device is opened by this process (in its own namespace, down, without
// addresses), moved at once into the lab namespace and configured there, so
// every packet stays inside the namespace. The fd keeps working after the
// move; closing it (or deleting the namespace) removes the interface.
import { TunDevice, type TunHandlers } from '../../netstack/tun';
import { runOk, type Lab, type Namespace } from './netns';

export interface LabTunOptions extends TunHandlers {
  /** "addr/prefix" entries for the interface (IPv6 ones get nodad). */
  addresses: string[];
  /** Routes into the TUN, e.g. "10.9.1.0/24". */
  routes?: string[];
  /** The kernel's queue toward us (default 500); drops beyond it are the interface's TX drops. */
  txqueuelen?: number;
}

export function openLabTun(lab: Lab, ns: Namespace, opts: LabTunOptions): TunDevice {
  const tun = TunDevice.open({ ...opts, name: lab.ifname('tn') });
  try {
    runOk('ip', ['link', 'set', tun.name, 'netns', ns.name]);
    // No router solicitations or MLD reports: tests read only what they cause.
    ns.execOk('sysctl', ['-q', '-w', `net.ipv6.conf.${tun.name}.router_solicitations=0`, `net.ipv6.conf.${tun.name}.accept_ra=0`]);
    for (const a of opts.addresses) ns.execOk('ip', ['addr', 'add', a, 'dev', tun.name, ...(a.includes(':') ? ['nodad'] : [])]);
    ns.execOk('ip', ['link', 'set', tun.name, 'up', ...(opts.txqueuelen ? ['txqueuelen', String(opts.txqueuelen)] : [])]);
    for (const r of opts.routes ?? []) ns.execOk('ip', ['route', 'add', r, 'dev', tun.name]);
  } catch (err) {
    // The setup error is the one worth reporting; a failed close adds nothing.
    tun.close().catch(() => undefined);
    throw err;
  }
  return tun;
}
