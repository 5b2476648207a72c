// Per-user record files: one JSON object per line under DATA_DIR/logs with
// private modes, names that cannot escape the directory, a bounded number of
// open files, and no credential ever written, whoever asks.

import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserLog, UserLogError, userFileName } from '../../../../vpn/logs/user_log';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';

afterAll(removeTempDirs);

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a record is one JSON line with type, ISO time, user, peer and the fields', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-'), now: () => T0 });
  log.write('alice', 'peerA', 'tls_pinned', { host: 'bank.test', failures: 3 });
  await log.close();
  expect(lines(log.pathFor('alice'))).toEqual([{ level: 'info', time: '2026-01-02T03:04:05.678Z', type: 'tls_pinned', user: 'alice', peer: 'peerA', device: null, host: 'bank.test', failures: 3 }]);
});

test('fields cannot forge type, user, peer, device or time', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-'), now: () => T0, deviceOf: () => 'laptop' });
  log.write('alice', 'peerA', 'http', { type: 'tls_pinned', user: 'bob', peer: 'x', device: 'phone', time: 'yesterday', level: 'fatal' });
  await log.close();
  expect(lines(log.pathFor('alice'))[0]).toMatchObject({ type: 'http', user: 'alice', peer: 'peerA', device: 'laptop', time: '2026-01-02T03:04:05.678Z', level: 'info' });
});

test("every record names its device: the writer's, else the peer's current device, else null", async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-'), deviceOf: (peer) => (peer === 'keyA' ? 'laptop' : undefined) });
  log.write('alice', 'keyA', 'flow');
  log.write('alice', 'keyB', 'session', {}, 'phone');
  log.write('alice', 'keyC', 'flow');
  await log.close();
  expect(lines(log.pathFor('alice')).map((r) => r.device)).toEqual(['laptop', 'phone', null]);
});

test('the logs directory is 0700 and files are 0600, even a file that existed with a looser mode', async () => {
  const dataDir = tempDir('sightline-ulog-');
  mkdirSync(join(dataDir, 'logs'), { mode: 0o700 });
  writeFileSync(join(dataDir, 'logs', 'bob.ndjson'), '', { mode: 0o644 });
  const log = new UserLog({ dataDir });
  log.write('alice', 'p', 'x');
  log.write('bob', 'p', 'x');
  await log.close();
  expect(statSync(log.dir).mode & 0o777).toBe(0o700);
  expect(statSync(log.pathFor('alice')).mode & 0o777).toBe(0o600);
  expect(statSync(log.pathFor('bob')).mode & 0o777).toBe(0o600);
});

test('a new logs directory is created 0700', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-') });
  log.write('carol', 'p', 'x');
  await log.close();
  expect(statSync(log.dir).mode & 0o777).toBe(0o700);
});

describe('user names as file names (path traversal)', () => {
  test.each([
    ['../../etc/passwd', '%2E.%2F..%2Fetc%2Fpasswd.ndjson'],
    ['..', '%2E..ndjson'],
    ['.hidden', '%2Ehidden.ndjson'],
    ['a/b', 'a%2Fb.ndjson'],
    ['nul\0byte', 'nul%00byte.ndjson'],
    ['alice@corp.example', 'alice@corp.example.ndjson'],
  ])('%j → %s', (user, file) => {
    expect(userFileName(user)).toBe(file);
  });

  test('no name leaves the logs directory', async () => {
    const log = new UserLog({ dataDir: tempDir('sightline-ulog-') });
    for (const user of ['../escape', '..', '/abs', 'a/../../b', 'x\0y']) log.write(user, 'p', 'x');
    await log.close();
    expect(readdirSync(log.dir)).toHaveLength(5);
    expect(readdirSync(join(log.dir, '..')).sort()).toEqual(['logs']);
  });

  test('different names never share a file (the encoding is injective)', () => {
    expect(userFileName('a/b')).not.toBe(userFileName('a%2Fb'));
  });

  test('empty and overlong names are refused', () => {
    expect(() => userFileName('')).toThrow(UserLogError);
    expect(() => userFileName('x'.repeat(300))).toThrow(/too long/);
  });
});

test('secret keys are stripped at any depth and counted; other fields survive', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-') });
  log.write('alice', 'p', 'http', {
    method: 'POST',
    Authorization: 'Bearer SECRET-A',
    headers: { 'Proxy-Authorization': 'Basic SECRET-B', Cookie: 'sid=SECRET-C', 'user-agent': 'curl/8' },
    response: { 'set-cookie': ['sid=SECRET-D'] },
    form: [{ password: 'SECRET-E', passwd: 'SECRET-F', token: 'SECRET-G', secret: 'SECRET-H', user: 'alice' }],
  });
  await log.close();
  const text = readFileSync(log.pathFor('alice'), 'utf8');
  expect(text).not.toMatch(/SECRET/);
  expect(JSON.parse(text)).toMatchObject({ method: 'POST', headers: { 'user-agent': 'curl/8' }, form: [{ user: 'alice' }] });
  expect(log.secretsDropped).toBe(8);
});

test('at most maxOpen files stay open; an evicted user is reopened and appended to', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-'), maxOpen: 2 });
  for (const u of ['u1', 'u2', 'u3', 'u1']) {
    log.write(u, 'p', 'x', { n: u });
    expect(log.openCount).toBeLessThanOrEqual(2);
  }
  await log.close();
  expect(lines(log.pathFor('u1'))).toHaveLength(2);
  expect(lines(log.pathFor('u3'))).toHaveLength(1);
});

test('a write that cannot be done is counted, never thrown into the data path', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-ulog-') });
  expect(() => log.write('', 'p', 'x')).not.toThrow();
  expect(log.writeErrors).toBe(1);
  await log.close();
});
