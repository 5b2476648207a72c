// Client configs route everything through the tunnel except routing.exclude,
// and never the tunnel pools out of it (the concentrator's DNS lives there).
import { join } from 'node:path';
import { openDeployment } from '../../../vpn/control';
import { provisionDevice } from '../../../vpn/control';
import { TempDir } from '../policy/helpers';

function allowedIps(config: string): string {
  const dir = new TempDir();
  const d = openDeployment({ dataDir: join(dir.path, 'data'), config: dir.write('sightline.yaml', config) });
  try {
    const conf = provisionDevice(d, { user: 'alice', endpoint: 'vpn.example.com:51820' }).clientConfig;
    return /^AllowedIPs = (.*)$/m.exec(conf)?.[1] ?? '';
  } finally {
    d.store.close();
    dir.cleanup();
  }
}

describe('client config AllowedIPs', () => {
  test('without routing.exclude the whole of both families goes through the tunnel', () => {
    expect(allowedIps('')).toBe('0.0.0.0/0, ::/0');
  });

  test('an excluded home LAN is left out of AllowedIPs', () => {
    const ips = allowedIps('tunnel:\n  ipv6Pool: fd5a:1e3b:77aa::/64\nrouting:\n  exclude: [192.168.0.0/16]\n').split(', ');
    expect(ips).toContain('192.169.0.0/16');
    expect(ips).not.toContain('0.0.0.0/0');
    expect(ips.some((p) => p.startsWith('192.168.'))).toBe(false);
    expect(ips).toContain('::/0');
  });

  test('an exclusion covering the tunnel pool keeps the pool in the tunnel', () => {
    const ips = allowedIps('tunnel:\n  ipv4Pool: 10.77.0.0/16\n  ipv6Pool: fd5a:1e3b:77aa::/64\nrouting:\n  exclude: [10.0.0.0/8, "fd00::/8"]\n').split(', ');
    expect(ips).toContain('10.77.0.0/16');
    expect(ips).toContain('fd5a:1e3b:77aa::/64');
  });
});
