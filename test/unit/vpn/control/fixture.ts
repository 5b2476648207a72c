// A throwaway deployment (data directory, config, store) for control-plane tests.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDeployment, type Deployment } from '../../../../vpn/control';

export function tempDeployment(yaml = 'tunnel:\n  ipv4Pool: 10.77.0.0/24\n  ipv6Pool: fd77:1:2::/64\n'): Deployment {
  const dataDir = mkdtempSync(join(tmpdir(), 'sightline-control-'));
  writeFileSync(join(dataDir, 'sightline.yaml'), yaml);
  return openDeployment({ dataDir }, {});
}
