// The peer registry: store devices → WireGuard peers + cryptokey routing
// (whitepaper §2), following changes made while the concentrator runs, and
// refusing the devices of disabled users and expired devices at once.
import { randomBytes } from 'node:crypto';
import { PeerRegistry, type CutReason, type DeviceRecord, type PeerTag } from '../../../../vpn/control';
import { PrivateKey, PublicKey, WgDevice } from '../../../../vpn/protocol';
import { IpAddress } from '../../../../netstack/wire';

const NOW = Date.UTC(2026, 5, 1);

function record(i: number, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id: i, user: `user-${i}`, name: 'default', publicKey: PrivateKey.generate().publicKey().toBase64(),
    presharedKey: randomBytes(32).toString('base64'), ipv4: `10.77.0.${i + 2}`, ipv6: `fd77::${(i + 2).toString(16)}`,
    createdAt: 0, expiresAt: null, userDisabled: false, ...over,
  };
}

function setup(records: DeviceRecord[]) {
  let version = 1;
  const cuts: Array<[string, CutReason]> = [];
  const device = new WgDevice<PeerTag>({ privateKey: PrivateKey.generate(), wallClock: Date.now });
  const registry = new PeerRegistry({ dataVersion: () => version, listDevices: () => records.slice() }, device, (tag, why) => cuts.push([tag.name, why]));
  registry.sync(NOW);
  return { registry, device, records, cuts, bump: () => version++ };
}

/** Which peer the routing table gives for a packet from/to `addr`. */
function route(registry: PeerRegistry, addr: string) {
  const a = IpAddress.parse(addr);
  return registry.allowedIps.owner(a);
}

const NO_CHANGE = { added: [], removed: [], refused: [], admitted: [] };

describe('PeerRegistry', () => {
  test('every device becomes a peer routed by its two leased addresses, tagged with user and device', () => {
    const { registry, device, records } = setup([record(0), record(1, { user: 'bob', name: 'phone' })]);
    expect([...device.peers()]).toHaveLength(2);
    const p = route(registry, '10.77.0.2');
    expect(p?.tag.name).toBe('user-0');
    expect(route(registry, 'fd77::2')).toBe(p);
    expect(p?.tag.owner).toEqual({ id: records[0].publicKey, user: 'user-0', device: 'default' });
    const phone = route(registry, '10.77.0.3')?.tag;
    expect([phone?.name, phone?.user, phone?.device, phone?.state]).toEqual(['bob/phone', 'bob', 'phone', 'active']);
  });

  test('the tag carries the addresses in canonical text form (as status.json shows them)', () => {
    const { registry } = setup([record(0, { ipv6: 'fd77:0:0:0::2' })]);
    const tag = route(registry, 'fd77::2')?.tag;
    expect([tag?.ipv4, tag?.ipv6]).toEqual(['10.77.0.2', 'fd77::2']);
  });

  test('a sync with no change in the store keeps every peer object (sessions survive)', () => {
    const s = setup([record(0, { ipv6: 'fd77:0:0:0::2' }), record(1, { presharedKey: null })]);
    const before = [...s.device.peers()];
    s.bump();
    expect(s.registry.syncIfChanged(NOW)).toEqual(NO_CHANGE);
    expect([...s.device.peers()]).toEqual(before);
  });

  test('without a store change or a due expiry, nothing is re-read', () => {
    const s = setup([record(0, { expiresAt: NOW + 60_000 })]);
    expect(s.registry.syncIfChanged(NOW + 1000)).toBeNull();
  });

  test.each<[string, Partial<DeviceRecord>]>([
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
    const name = s.records[0].user;
    expect(s.registry.syncIfChanged(NOW)).toEqual({ ...NO_CHANGE, added: [name], removed: ['user-0'] });
    const now = route(s.registry, s.records[0].ipv4);
    expect(now).toBeDefined();
    expect(now).not.toBe(old);
    expect([...s.device.peers()]).toEqual([now]);
    if (change.ipv4 !== undefined) expect(route(s.registry, '10.77.0.2')).toBeUndefined();
  });

  test("a removed device's peer and routes go, its flows are cut; the generation counts the change", () => {
    const s = setup([record(0), record(1)]);
    const g = s.registry.generation;
    s.records.splice(0, 1);
    s.bump();
    expect(s.registry.syncIfChanged(NOW)).toEqual({ ...NO_CHANGE, removed: ['user-0'] });
    expect(route(s.registry, '10.77.0.2')).toBeUndefined();
    expect(s.registry.size).toBe(1);
    expect(s.registry.generation).toBe(g + 1);
    expect(s.cuts).toEqual([['user-0', 'removed']]);
  });

  test("disabling a user refuses every device of theirs: known to the device, unrouted, flows cut", () => {
    const s = setup([record(0, { user: 'alice' }), record(1, { user: 'alice', name: 'phone' }), record(2)]);
    for (const r of s.records.slice(0, 2)) r.userDisabled = true;
    s.bump();
    expect(s.registry.syncIfChanged(NOW + 5)).toEqual({ ...NO_CHANGE, refused: ['alice', 'alice/phone'] });
    expect(s.device.peer(PublicKey.fromBase64(s.records[0].publicKey))?.refused).toBe('disabled');
    expect([...s.device.peers()].map((p) => [p.tag.name, p.tag.state, p.refused])).toEqual([
      ['alice', 'disabled', 'disabled'], ['alice/phone', 'disabled', 'disabled'], ['user-2', 'active', null],
    ]);
    expect(route(s.registry, '10.77.0.2')).toBeUndefined();
    expect(route(s.registry, '10.77.0.3')).toBeUndefined();
    expect(route(s.registry, '10.77.0.4')?.tag.name).toBe('user-2');
    expect(s.cuts).toEqual([['alice', 'disabled'], ['alice/phone', 'disabled']]);
    expect([...s.device.peers()][0].tag.stateSince).toBe(NOW + 5);
  });

  test('enabling the user again routes the same peer objects again', () => {
    const s = setup([record(0, { userDisabled: true })]);
    const peer = [...s.device.peers()][0];
    expect(peer.refused).toBe('disabled');
    s.records[0].userDisabled = false;
    s.bump();
    expect(s.registry.syncIfChanged(NOW)).toEqual({ ...NO_CHANGE, admitted: ['user-0'] });
    expect(route(s.registry, '10.77.0.2')).toBe(peer);
    expect(peer.refused).toBeNull();
  });

  test('a device is refused once its expiry passes, without any store change', () => {
    const s = setup([record(0, { expiresAt: NOW + 3000 })]);
    expect(s.registry.syncIfChanged(NOW + 2999)).toBeNull();
    expect(s.registry.syncIfChanged(NOW + 3000)).toEqual({ ...NO_CHANGE, refused: ['user-0'] });
    expect([...s.device.peers()][0].tag.state).toBe('expired');
    expect(s.cuts).toEqual([['user-0', 'expired']]);
  });

  test('re-enabling the user does not revive an expired device; renewing it does', () => {
    const s = setup([record(0, { expiresAt: NOW - 1, userDisabled: true })]);
    expect([...s.device.peers()][0].tag.state).toBe('disabled');
    s.records[0].userDisabled = false;
    s.bump();
    expect(s.registry.syncIfChanged(NOW)?.admitted).toEqual([]);
    expect([...s.device.peers()][0].tag.state).toBe('expired');
    s.records[0].expiresAt = NOW + 86_400_000;
    s.bump();
    expect(s.registry.syncIfChanged(NOW)?.admitted).toEqual(['user-0']);
    expect(route(s.registry, '10.77.0.2')?.tag.expiresAt).toBe(NOW + 86_400_000);
  });
});
