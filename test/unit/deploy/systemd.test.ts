// deploy/sightline.service: the concentrator runs unprivileged in socket mode,
// restarts on failure, keeps its state in one private data directory, and
// gets no capability it does not need.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const unit = readFileSync(join(__dirname, '..', '..', '..', 'deploy', 'sightline.service'), 'utf8');
const settings = new Map<string, string[]>();
for (const line of unit.split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
  if (m) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
}
const one = (k: string): string | undefined => settings.get(k)?.[0];

test('runs as an unprivileged user with no capabilities', () => {
  expect(one('User')).toBe('sightline');
  expect(one('NoNewPrivileges')).toBe('yes');
  expect(one('CapabilityBoundingSet')).toBe('');
  expect(one('AmbientCapabilities')).toBe('');
});

test('starts the concentrator on a private data directory and restarts it on failure', () => {
  expect(one('ExecStart')).toMatch(/bin\/sightline\.js start$/);
  expect(one('StateDirectory')).toBe('sightline');
  expect(one('StateDirectoryMode')).toBe('0700');
  expect(settings.get('Environment')).toContain('SIGHTLINE_DATA_DIR=/var/lib/sightline');
  expect(one('Restart')).toBe('on-failure');
  expect(one('KillSignal')).toBe('SIGTERM');
});

test('the file system is read-only but for the data directory', () => {
  expect(one('ProtectSystem')).toBe('strict');
  expect(one('ReadWritePaths')).toBe('/var/lib/sightline');
});

test('systemd-analyze accepts the unit, where it is available', () => {
  const r = spawnSync('systemd-analyze', ['verify', join(__dirname, '..', '..', '..', 'deploy', 'sightline.service')], { encoding: 'utf8' });
  if (r.error) return; // not installed here
  expect(r.stderr.split('\n').filter((l) => /sightline\.service/.test(l) && !/node|User|Documentation/.test(l))).toEqual([]);
});
