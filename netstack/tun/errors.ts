// What can go wrong when opening a TUN device, worded for the person who has
// to fix it. The addon reports the failing step and errno; the advice lives
// here so that it is tested without root.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/** IFNAMSIZ (16) includes the terminating NUL. */
export const TUN_NAME_MAX_BYTES = 15;

export type TunOpenReason = 'bad_name' | 'no_tun' | 'not_permitted' | 'not_a_tun' | 'busy' | 'failed';

export class TunOpenError extends Error {
  constructor(
    readonly reason: TunOpenReason,
    message: string,
    /** errno of the failing step (0 for a name refused before any syscall). */
    readonly errno = 0,
    readonly syscall = '',
  ) {
    super(message);
    this.name = 'TunOpenError';
  }
}

/**
 * Why `name` cannot be a TUN interface name, or null. Stricter than the
 * kernel's dev_valid_name (no '/', ':', whitespace): only what `ip` and
 * nftables take without quoting, no leading '-' (read as an option) and no
 * '%' (a kernel name template such as tun%d).
 */
export function tunNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return 'TUN interface name is empty';
  if (bytes > TUN_NAME_MAX_BYTES) {
    return `TUN interface name "${name}" is too long: ${bytes} bytes, at most ${TUN_NAME_MAX_BYTES} (IFNAMSIZ is 16 with the terminating NUL)`;
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    return `TUN interface name "${name}" has characters an interface name should not have: use letters, digits, '_', '.' and '-' (not first)`;
  }
  return null;
}

function errnoText(errno: number): string {
  const entry = getSystemErrorMap().get(-errno);
  return entry ? `${entry[0]}: ${entry[1]}` : `errno ${errno}`;
}

const NO_TUN = new Set(['ENOENT', 'ENODEV', 'ENXIO']);
const NO_PERMISSION = new Set(['EPERM', 'EACCES']);

/** The error for a failed open of TUN `name` at `syscall` ("open /dev/net/tun", "TUNSETIFF", "name") with `errno`. */
export function explainTunOpenError(name: string, syscall: string, errno: number): TunOpenError {
  const code = getSystemErrorMap().get(-errno)?.[0] ?? '';
  const detail = `${syscall}${syscall === 'TUNSETIFF' ? ` ${name}` : ''}: ${errnoText(errno)}`;
  const make = (reason: TunOpenReason, text: string) => new TunOpenError(reason, text, errno, syscall);
  if (syscall === 'name') return make('bad_name', tunNameProblem(name) ?? `TUN interface name "${name}" refused: ${detail}`);
  if (syscall.startsWith('open') && NO_TUN.has(code)) {
    return make('no_tun', `the kernel has no TUN support or /dev/net/tun is not in this container: ${detail} (load the tun module, or give the container the device, e.g. docker run --device /dev/net/tun --cap-add NET_ADMIN)`);
  }
  if (NO_PERMISSION.has(code)) {
    return make('not_permitted', `routed mode needs root or CAP_NET_ADMIN: ${detail} (run as root, grant the capability, e.g. AmbientCapabilities=CAP_NET_ADMIN in the systemd unit, or attach to a persistent TUN made for this user: ip tuntap add ${name} mode tun user USER)`);
  }
  if (syscall === 'TUNSETIFF' && code === 'EINVAL') {
    return make('not_a_tun', `interface "${name}" already exists and is not a single-queue TUN device (see ip -d link show ${name}); remove it or choose another name: ${detail}`);
  }
  if (syscall === 'TUNSETIFF' && code === 'EBUSY') {
    return make('busy', `TUN "${name}" is already open in another process (a single-queue TUN has one reader: is another concentrator running?): ${detail}`);
  }
  return make('failed', `cannot open TUN "${name}": ${detail}`);
}

/** The error passed to onError when an open device fails: `errno` as the addon saw it. */
export function tunDeviceFailure(name: string, errno: number): Error {
  const what = name === '' ? 'packet fd' : `TUN "${name}"`;
  if (errno === constants.errno.EPIPE) return new Error(`${what}: the other end closed (EPIPE); the device is closed`);
  return new Error(`${what} failed, most likely the interface was deleted (ip link del): ${errnoText(errno)}; the device is closed`);
}
