// Leases: every device gets its own IPv4 and IPv6 address; an address is
// never leased twice while its device exists, is freed with it, and can be
// leased again afterwards; a full pool is a clear error naming it and the fix.
import { layoutPools, pickAddresses, provisionDevice, removeDevice, removeUser } from '../../../../vpn/control';
import type { Deployment } from '../../../../vpn/control';
import { tempDeployment } from './fixture';

const small = () => tempDeployment('tunnel:\n  ipv4Pool: 10.88.0.0/29\n  ipv6Pool: fd88::/64\n');

function add(d: Deployment, user: string, device?: string) {
  return provisionDevice(d, { user, device, endpoint: 'vpn.example.com:51820' }).device;
}

describe('pickAddresses', () => {
  const layout = layoutPools({ ipv4Pool: '10.77.0.0/24', ipv6Pool: 'fd77::/64' });

  test('the first device gets host index 2 in both pools (index 1 is the concentrator)', () => {
    expect(layout.serverV4).toBe('10.77.0.1');
    expect(pickAddresses(layout, new Set())).toEqual({ ipv4: '10.77.0.2', ipv6: 'fd77::2' });
  });

  test('the lowest index free in both pools is preferred, so a device has matching addresses', () => {
    expect(pickAddresses(layout, new Set(['10.77.0.2', 'fd77::3']))).toEqual({ ipv4: '10.77.0.4', ipv6: 'fd77::4' });
  });

  test('when no index is free in both, each pool gives its lowest free address', () => {
    const v4 = layoutPools({ ipv4Pool: '10.77.0.0/29', ipv6Pool: 'fd77::/64' });
    const used = new Set(['10.77.0.2', '10.77.0.3', '10.77.0.5', '10.77.0.6', 'fd77::4']);
    expect(pickAddresses(v4, used)).toEqual({ ipv4: '10.77.0.4', ipv6: 'fd77::2' });
  });

  test('the IPv4 broadcast address is never leased', () => {
    const tiny = layoutPools({ ipv4Pool: '10.77.0.0/30', ipv6Pool: 'fd77::/64' });
    expect(pickAddresses(tiny, new Set())).toEqual({ ipv4: '10.77.0.2', ipv6: 'fd77::2' });
    expect(() => pickAddresses(tiny, new Set(['10.77.0.2']))).toThrow(/tunnel\.ipv4Pool 10\.77\.0\.0\/30 is full/);
  });
});

describe('leases in the store', () => {
  test('each device of a user gets its own pair of addresses', () => {
    const d = tempDeployment();
    const a = add(d, 'alice');
    const b = add(d, 'alice', 'phone');
    expect([a.ipv4, a.ipv6, b.ipv4, b.ipv6]).toEqual(['10.77.0.2', 'fd77:1:2::2', '10.77.0.3', 'fd77:1:2::3']);
    d.store.close();
  });

  test('pool exhaustion is an error naming the pool, its size and the fix', () => {
    const d = small(); // /29: 8 addresses - network, concentrator, broadcast = 5 devices
    for (let i = 0; i < 5; i++) add(d, `u${i}`);
    expect(() => add(d, 'one-too-many')).toThrow(
      'tunnel.ipv4Pool 10.88.0.0/29 is full: all 5 device addresses are leased. Widen tunnel.ipv4Pool in sightline.yaml',
    );
    expect(() => add(d, 'one-too-many')).toThrow(/sightline device remove USER DEVICE/);
    d.store.close();
  });

  test('a failed add leaves nothing behind: no user, no device, no lease', () => {
    const d = small();
    for (let i = 0; i < 5; i++) add(d, `u${i}`);
    expect(() => add(d, 'late')).toThrow(/is full/);
    expect(d.store.db.prepare("SELECT COUNT(*) AS n FROM users WHERE name = 'late'").get()).toEqual({ n: 0 });
    expect(d.store.db.prepare('SELECT COUNT(*) AS n FROM leases').get()).toEqual({ n: 10 });
    d.store.close();
  });

  test("removing a device frees its addresses and the next device reuses them", () => {
    const d = small();
    const devices = Array.from({ length: 5 }, (_, i) => add(d, `u${i}`));
    removeDevice(d.store, 'u2', 'default');
    const next = add(d, 'newcomer');
    expect([next.ipv4, next.ipv6]).toEqual([devices[2].ipv4, devices[2].ipv6]);
    d.store.close();
  });

  test("removing a user frees the leases of all their devices", () => {
    const d = small();
    add(d, 'alice');
    add(d, 'alice');
    add(d, 'bob');
    expect(removeUser(d.store, 'alice')).toBe(2);
    expect(d.store.db.prepare('SELECT address FROM leases ORDER BY address').pluck().all()).toEqual(['10.88.0.4', 'fd88::4']);
    expect([add(d, 'carol').ipv4, add(d, 'carol').ipv4]).toEqual(['10.88.0.2', '10.88.0.3']);
    d.store.close();
  });
});
