// Users in the store: disabling refuses all their devices (deviceState),
// enabling does not revive an expired device, removing takes devices along.
import {
  addUser, deviceState, findUser, listDevices, listUsers, provisionDevice, removeUser, renewDevice, setUserDisabled,
} from '../../../../vpn/control';
import { tempDeployment } from './fixture';

const ENDPOINT = 'vpn.example.com:51820';

describe('users', () => {
  test('user add stores the email; a second add of the same name is refused', () => {
    const d = tempDeployment();
    addUser(d.store, 'alice', 'alice@example.com');
    expect(findUser(d.store, 'alice')).toMatchObject({ name: 'alice', email: 'alice@example.com', disabled: false, devices: 0 });
    expect(() => addUser(d.store, 'alice', null)).toThrow('user "alice" already exists');
    d.store.close();
  });

  test.each(['alice', 'a b@example.com', 'alice@', '@example.com'])('the email %j is refused', (email) => {
    const d = tempDeployment();
    expect(() => addUser(d.store, 'alice', email)).toThrow(/invalid email/);
    d.store.close();
  });

  test("disabling a user refuses every one of their devices, and only theirs", () => {
    const d = tempDeployment();
    provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    provisionDevice(d, { user: 'bob', endpoint: ENDPOINT });
    expect(setUserDisabled(d.store, 'alice', true)).toBe(true);
    expect(setUserDisabled(d.store, 'alice', true)).toBe(false);
    const now = Date.now();
    expect(listDevices(d.store).map((r) => [r.user, r.name, deviceState(r, now)])).toEqual([
      ['alice', 'default', 'disabled'], ['alice', 'device2', 'disabled'], ['bob', 'default', 'active'],
    ]);
    d.store.close();
  });

  test('enabling a user does not revive an expired device; renewing it does', () => {
    const d = tempDeployment();
    const now = Date.now();
    provisionDevice(d, { user: 'alice', endpoint: ENDPOINT, expiresAt: now + 1000 });
    setUserDisabled(d.store, 'alice', true);
    setUserDisabled(d.store, 'alice', false);
    const [dev] = listDevices(d.store);
    expect(deviceState(dev, now + 2000)).toBe('expired');
    renewDevice(d.store, 'alice', 'default', now + 86_400_000);
    expect(deviceState(listDevices(d.store)[0], now + 2000)).toBe('active');
    d.store.close();
  });

  test('removing a user removes their devices; unknown users are named in the error', () => {
    const d = tempDeployment();
    provisionDevice(d, { user: 'alice', endpoint: ENDPOINT });
    provisionDevice(d, { user: 'bob', endpoint: ENDPOINT });
    expect(removeUser(d.store, 'alice')).toBe(1);
    expect(listUsers(d.store).map((u) => u.name)).toEqual(['bob']);
    expect(listDevices(d.store).map((r) => r.user)).toEqual(['bob']);
    expect(() => removeUser(d.store, 'alice')).toThrow('no user named "alice" (see: sightline user list)');
    expect(() => setUserDisabled(d.store, 'nobody', true)).toThrow(/no user named "nobody"/);
    d.store.close();
  });
});
