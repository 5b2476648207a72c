// The peer registry: store records → WireGuard peers + cryptokey routing
// (whitepaper §2), and following changes made while the concentrator runs.
import { randomBytes } from 'node:crypto';
import { PeerRegistry, type PeerTag } from '../../../../vpn/control';
import { PrivateKey, WgDevice } from '../../../../vpn/protocol';
import type { PeerRecord, Store } from '../../../../vpn/control';
import { IpAddress } from '../../../../netstack/wire';

function record(i: number, over: Partial<PeerRecord> = {}): PeerRecord {
  return {
    id: i, name: `peer-${i}`, user: `peer-${i}`, publicKey: PrivateKey.generate().publicKey().toBase64(),
    presharedKey: randomBytes(32).toString('base64'), ipv4: `10.77.0.${i + 2}`, ipv6: `fd77::${(i + 2).toString(16)}`,
    createdAt: 0, disabled: false, ...over,
  };
}

function setup(records: PeerRecord[]) {
  let version = 1;
  const fake = { dataVersion: () => version, listPeers: () => records.slice() };
  const device = new WgDevice({ privateKey: PrivateKey.generate(), sink: { sendDatagram: () => undefined, deliverPacket: () => undefined } });
  const registry = new PeerRegistry(fake as unknown as Store, device);
  registry.sync();
  return { registry, device, records, bump: () => version++ };
}

/** Which peer the routing table gives for a packet from/to `addr`. */
function route(registry: PeerRegistry, addr: string) {
  const a = IpAddress.parse(addr);
  return registry.allowedIps.lookup(a.bytes, 0, a.family);
}

describe('PeerRegistry', () => {
  test('every enabled record becomes a peer routed by its two leased addresses', () => {
    const { registry, device, records } = setup([record(0), record(1), record(2, { disabled: true })]);
    expect([...device.peers()]).toHaveLength(2);
    const p = route(registry, '10.77.0.2');
    expect((p?.tag as PeerTag).name).toBe('peer-0');
    expect(route(registry, 'fd77::2')).toBe(p);
    expect(route(registry, '10.77.0.4')).toBeUndefined();
    expect((p?.tag as PeerTag).owner).toEqual({ id: records[0].publicKey, user: 'peer-0' });
  });

  test('the tag carries the addresses in canonical text form (as status.json shows them)', () => {
    const { registry } = setup([record(0, { ipv6: 'fd77:0:0:0::2' })]);
    const tag = route(registry, 'fd77::2')?.tag as PeerTag;
    expect([tag.ipv4, tag.ipv6]).toEqual(['10.77.0.2', 'fd77::2']);
  });

  test('a sync with no change in the store keeps every peer object (sessions survive)', () => {
    const s = setup([record(0, { ipv6: 'fd77:0:0:0::2' }), record(1, { presharedKey: null })]);
    const before = [...s.device.peers()];
    s.bump();
    expect(s.registry.syncIfChanged()).toEqual({ added: [], removed: [] });
    expect([...s.device.peers()]).toEqual(before);
  });

  test.each<[string, Partial<PeerRecord>]>([
    ['preshared key', { presharedKey: randomBytes(32).toString('base64') }],
    ['preshared key removed', { presharedKey: null }],
    ['IPv4 lease', { ipv4: '10.77.0.99' }],
    ['IPv6 lease', { ipv6: 'fd77::99' }],
    ['user', { user: 'someone-else' }],
  ])('a changed %s replaces the peer and its routes', (_what, change) => {
    const s = setup([record(0)]);
    const old = route(s.registry, '10.77.0.2');
    s.records[0] = { ...s.records[0], ...change };
    s.bump();
    expect(s.registry.syncIfChanged()).toEqual({ added: ['peer-0'], removed: ['peer-0'] });
    const now = route(s.registry, s.records[0].ipv4);
    expect(now).toBeDefined();
    expect(now).not.toBe(old);
    expect([...s.device.peers()]).toEqual([now]);
    if (change.ipv4 !== undefined) expect(route(s.registry, '10.77.0.2')).toBeUndefined();
  });

  test('a removed record removes the peer and its routes; the generation counts the change', () => {
    const s = setup([record(0), record(1)]);
    const g = s.registry.generation;
    s.records.splice(0, 1);
    s.bump();
    expect(s.registry.syncIfChanged()).toEqual({ added: [], removed: ['peer-0'] });
    expect(route(s.registry, '10.77.0.2')).toBeUndefined();
    expect(s.registry.size).toBe(1);
    expect(s.registry.generation).toBe(g + 1);
  });
});
