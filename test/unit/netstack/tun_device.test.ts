// netstack/tun against the kernel's real TUN, inside a network namespace the
// test creates (root and /dev/net/tun, else skipped with the reason; under
// CI=true a failure). Routed mode relies on: what the kernel routes into the
// interface is read as whole IP packets, what we write is taken by the
// kernel as if it arrived on a link, in batches both ways, errors that say
// what to do, and an interface that goes away with the device.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { explainTunOpenError, TunDevice, TunOpenError, type TunBatch } from '../../../netstack/tun';
import { buildIcmpEcho, buildUdpPacket, IpAddress, isWireError, parseIpPacket, UdpView, type IpPacket } from '../../../netstack/wire';
import { describeE2E } from '../../helpers/e2e';
import { Lab, run, runOk, waitFor, type Namespace } from '../../../scripts/lab/netns';
import { openLabTun } from '../../../scripts/lab/tun';

const V4 = { tun: '10.77.0.1', remote: '10.77.1.5' };
const V6 = { tun: 'fd77::1', remote: 'fd77:1::5' };
const FAMILIES = [['IPv4', V4], ['IPv6', V6]] as const;
const ADDON = join(__dirname, '..', '..', '..', 'build', 'Release', 'tun_native.node');
const ECHO_PORT = 7007;
const ICMP_ECHO_REPLY = { 4: 0, 6: 129 } as const;

/** Parsed copies of what the TUN delivered (batch memory is reused); IPv6 multicast (MLD) left out. */
class Reader {
  readonly packets: IpPacket[] = [];
  readonly batchSizes: number[] = [];
  onBatch = (b: TunBatch): void => {
    this.batchSizes.push(b.count);
    for (let i = 0; i < b.count; i++) {
      const p = parseIpPacket(Buffer.from(b.packet(i)));
      if (isWireError(p)) throw new Error(`unparseable packet from the TUN: ${p.reason}`);
      if (!(p.family === 6 && p.dst[0] === 0xff)) this.packets.push(p);
    }
  };
  async take(what: string, pred: (p: IpPacket) => boolean, count = 1): Promise<IpPacket[]> {
    return waitFor(what, () => {
      const hits = this.packets.filter(pred);
      return hits.length >= count ? hits : undefined;
    }, 10_000, 5);
  }
}

const addr = (b: Buffer) => IpAddress.fromBytes(b).toString();

/** A node one-liner run inside the namespace (bounded, exits by itself). */
function nodeIn(ns: Namespace, script: string): string {
  return ns.execOk(process.execPath, ['-e', script], { timeoutMs: 20_000 });
}

function sendUdpIn(ns: Namespace, dst: string, port: number, count: number, size: number): void {
  nodeIn(ns, `
    const s = require('dgram').createSocket('${dst.includes(':') ? 'udp6' : 'udp4'}');
    let left = ${count};
    for (let i = 0; i < ${count}; i++) {
      const d = Buffer.alloc(${size}, 0x61); d.writeUInt32BE(i, 0);
      s.send(d, ${port}, '${dst}', () => { if (--left === 0) s.close(); });
    }`);
}

/** Open the addon in a child (dropped privileges / no /dev/net/tun): its errno and step. */
function openInChild(wrap: string[], name: string): { errno?: number; syscall?: string; opened?: boolean } {
  const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(ADDON)});
    try { m.exports.open(${JSON.stringify(name)}, 1, () => 0, () => 0); console.log(JSON.stringify({ opened: true })); process.exit(0); }
    catch (e) { console.log(JSON.stringify({ errno: e.errno, syscall: e.syscall })); }`;
  const r = spawnSync(wrap[0], [...wrap.slice(1), process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${wrap.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

describeE2E('TUN device (netstack/tun) in a network namespace', ['ip'], () => {
  let lab: Lab;
  let ns: Namespace;
  let tun: TunDevice;
  let reader: Reader;
  let errors: Error[];

  beforeEach(() => {
    lab = new Lab('tun');
    ns = lab.namespace('gw');
    reader = new Reader();
    errors = [];
    tun = openLabTun(lab, ns, {
      addresses: [`${V4.tun}/24`, `${V6.tun}/64`],
      routes: ['10.77.1.0/24', 'fd77:1::/64'],
      txqueuelen: 4096,
      onBatch: reader.onBatch,
      onError: (e) => errors.push(e),
    });
  });

  afterEach(async () => {
    await tun.close();
    await lab.cleanup();
    expect(errors).toEqual([]);
  });

  test.each(FAMILIES)('%s: a datagram sent in the namespace to an address routed into the TUN is read as one IP packet', async (_f, a) => {
    sendUdpIn(ns, a.remote, 4000, 1, 64);
    const [p] = await reader.take('the datagram', (q) => q.protocol === 17);
    expect(addr(p.src)).toBe(a.tun);
    expect(addr(p.dst)).toBe(a.remote);
    const udp = UdpView.parse(p.payload);
    if (isWireError(udp)) throw new Error(udp.reason);
    expect(udp.dstPort).toBe(4000);
    expect(udp.verifyChecksum(p.src, p.dst)).toBe(true);
    expect(udp.payload.length).toBe(64);
  });

  test.each(FAMILIES)('%s: an ICMP echo request written into the TUN is answered by the kernel, read back from the TUN', async (_f, a) => {
    const req = buildIcmpEcho(IpAddress.parse(a.remote), IpAddress.parse(a.tun), 'echo_request', 0x5151, 7, Buffer.from('tun ping'));
    expect(tun.write([req])).toBe(1);
    const [reply] = await reader.take('the echo reply', (q) => q.payload[0] === ICMP_ECHO_REPLY[q.family]);
    expect(addr(reply.src)).toBe(a.tun);
    expect(addr(reply.dst)).toBe(a.remote);
    expect(reply.payload.readUInt16BE(4)).toBe(0x5151);
    expect(reply.payload.readUInt16BE(6)).toBe(7);
    expect(reply.payload.subarray(8).toString()).toBe('tun ping');
  });

  test.each(FAMILIES)('%s: a UDP packet written into the TUN reaches a socket in the namespace, and its answer comes back out', async (_f, a) => {
    const server = ns.spawn(process.execPath, ['-e', `
      const d = require('dgram'); let up = 0;
      for (const [type, host] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
        const s = d.createSocket({ type, ipv6Only: type === 'udp6' });
        s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
        s.bind(${ECHO_PORT}, host, () => { if (++up === 2) console.log('ready'); });
      }`]);
    await once(server.stdout!, 'data');
    tun.write([buildUdpPacket(IpAddress.parse(a.remote), 5555, IpAddress.parse(a.tun), ECHO_PORT, Buffer.from('hello'))]);
    const [p] = await reader.take('the answer', (q) => q.protocol === 17);
    const udp = UdpView.parse(p.payload);
    if (isWireError(udp)) throw new Error(udp.reason);
    expect([addr(p.src), udp.srcPort, addr(p.dst), udp.dstPort]).toEqual([a.tun, ECHO_PORT, a.remote, 5555]);
    expect(udp.payload.toString()).toBe('echo:hello');
  });

  test('a packet that is neither IPv4 nor IPv6 is refused by the kernel and counted; the device keeps working', async () => {
    expect(tun.write([Buffer.from('this is not an IP packet')])).toBe(0);
    expect(tun.counters.tx_errors_invalid).toBe(1);
    tun.write([buildIcmpEcho(IpAddress.parse(V4.remote), IpAddress.parse(V4.tun), 'echo_request', 1, 1, Buffer.alloc(8))]);
    await reader.take('the echo reply', (q) => q.payload[0] === 0);
  });

  test('2,000 echo requests written 64 per call come back as 2,000 replies read in batches', async () => {
    const TOTAL = 2000, PER_CALL = 64, ROUND = 256;
    const src = IpAddress.parse(V4.remote), dst = IpAddress.parse(V4.tun);
    for (let sent = 0; sent < TOTAL; ) {
      const roundEnd = Math.min(sent + ROUND, TOTAL);
      while (sent < roundEnd) {
        const batch: Buffer[] = [];
        for (; sent < roundEnd && batch.length < PER_CALL; sent++) batch.push(buildIcmpEcho(src, dst, 'echo_request', 9, sent, Buffer.alloc(56, sent & 0xff)));
        expect(tun.write(batch)).toBe(batch.length);
      }
      await reader.take(`${sent} replies`, (q) => q.payload[0] === 0, sent);
    }
    const seqs = reader.packets.filter((q) => q.payload[0] === 0).map((q) => q.payload.readUInt16BE(6));
    expect(seqs).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    expect(tun.counters).toMatchObject({ tx_packets: TOTAL, tx_dropped_queue_full: 0, tx_errors: 0 });
  });

  test('2,000 datagrams sent at once in the namespace are all read, many per onBatch call', async () => {
    sendUdpIn(ns, V4.remote, 4001, 2000, 1200);
    const got = await reader.take('2,000 datagrams', (q) => q.protocol === 17, 2000);
    expect(got.map((q) => q.payload.readUInt32BE(8))).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(Math.max(...reader.batchSizes)).toBeGreaterThan(1);
    expect(tun.counters.rx_batches).toBeLessThan(tun.counters.rx_packets);
  });

  test('close() removes the interface the kernel created for us', async () => {
    expect(tun.created).toBe(true);
    expect(ns.exec('ip', ['link', 'show', tun.name]).code).toBe(0);
    await tun.close();
    expect(ns.exec('ip', ['link', 'show', tun.name]).stderr).toMatch(/does not exist/);
  });

  test('deleting the interface under a running device is reported once to onError and closes it', async () => {
    ns.execOk('ip', ['link', 'del', tun.name]);
    await waitFor('the failure', () => (errors.length > 0 ? true : undefined));
    expect(errors.splice(0).map((e) => e.message)).toEqual([expect.stringMatching(/interface was deleted/)]);
    expect(tun.write([Buffer.alloc(20)])).toBe(0);
  });
});

describeE2E('TUN device: attaching, conflicts and privileges', ['ip', 'setpriv', 'capsh', 'unshare'], () => {
  const lab = new Lab('tun');
  const name = () => lab.ifname('tq');
  // These interfaces live briefly in this process's namespace (that is where
  // TUNSETIFF looks names up): down, without addresses, removed in finally.
  function withLink(kind: 'tun' | 'tap', body: (ifname: string) => Promise<void> | void): () => Promise<void> {
    return async () => {
      const ifname = name();
      runOk('ip', ['tuntap', 'add', 'dev', ifname, 'mode', kind]);
      try {
        await body(ifname);
      } finally {
        run('ip', ['link', 'del', ifname]);
      }
    };
  }

  test('an existing persistent TUN is attached (created false) and still exists after close()', withLink('tun', async (ifname) => {
    const t = TunDevice.open({ name: ifname, onBatch: () => undefined });
    expect(t.created).toBe(false);
    await t.close();
    expect(run('ip', ['link', 'show', ifname]).code).toBe(0);
  }));

  test('a name taken by an interface that is not a TUN (a TAP here) is refused with a clear error', withLink('tap', (ifname) => {
    expect(() => TunDevice.open({ name: ifname, onBatch: () => undefined })).toThrow(
      expect.objectContaining({ reason: 'not_a_tun', message: expect.stringMatching(new RegExp(`interface "${ifname}" already exists and is not a single-queue TUN`)) }),
    );
  }));

  test('a TUN another open already holds is refused as busy', async () => {
    const first = TunDevice.open({ name: name(), onBatch: () => undefined });
    try {
      expect(() => TunDevice.open({ name: first.name, onBatch: () => undefined })).toThrow(expect.objectContaining({ reason: 'busy' }));
    } finally {
      await first.close();
    }
  });

  // nobody fails at open() where /dev/net/tun is 0600 (here), at TUNSETIFF where it is 0666 (most hosts).
  test.each([
    ['a user without privileges (setpriv to nobody)', ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], expect.any(String)],
    ['root without CAP_NET_ADMIN (capsh --drop)', ['capsh', '--drop=cap_net_admin', '--', '-c', 'exec "$0" "$@"'], 'TUNSETIFF'],
  ])('%s is told that routed mode needs root or CAP_NET_ADMIN', (_who, wrap, syscall) => {
    const ifname = name();
    const r = openInChild(wrap, ifname);
    expect(r).toEqual({ errno: expect.any(Number), syscall });
    const e = explainTunOpenError(ifname, r.syscall ?? '', r.errno ?? 0);
    expect(e).toBeInstanceOf(TunOpenError);
    expect(e.reason).toBe('not_permitted');
    expect(e.message).toMatch(/^routed mode needs root or CAP_NET_ADMIN: /);
    expect(run('ip', ['link', 'show', ifname]).code).not.toBe(0);
  });

  test('without /dev/net/tun (hidden in a private mount namespace) the error says TUN is missing', () => {
    const r = openInChild(['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" "$@"'], name());
    expect(r).toEqual({ errno: 2, syscall: 'open /dev/net/tun' });
    expect(explainTunOpenError('sightline0', r.syscall ?? '', r.errno ?? 0).message).toMatch(/^the kernel has no TUN support or \/dev\/net\/tun is not in this container: /);
  });

  afterAll(() => lab.cleanup());
});
