// Rotation and retention of per-user logs: by size and by UTC day (through
// rotating-file-stream), files kept private, nothing lost or reordered, and
// files past log.retentionDays deleted.
import { mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserLog, userLogFiles } from '../../../../vpn/logs';
import { sweepExpired } from '../../../../vpn/logs/retention';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';

afterAll(removeTempDirs);

const DAY = 86_400_000;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function seqs(log: UserLog, user: string): number[] {
  return userLogFiles(log.dir, user).flatMap((f) => readFileSync(f.path, 'utf8').trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq));
}

test('a file that reaches log.rotate.maxBytes is rotated; every record is kept, in order, across the files', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-rot-'), maxBytes: 4096 });
  for (let i = 0; i < 300; i++) {
    log.write('alice', 'k', 'flow', { seq: i, pad: 'x'.repeat(40) });
    if (i % 10 === 9) await turn();
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
  }
  await log.close();
  const files = userLogFiles(log.dir, 'alice');
  expect(files.length).toBeGreaterThan(3);
  expect(files[files.length - 1].current).toBe(true);
  for (const f of files.slice(0, -1)) {
    expect(f.path).toMatch(/archive\/alice\/\d{4}-\d{2}-\d{2}T\d{6}Z\.\d{3}\.ndjson$/);
    // Rotated once it reached the limit, and never by more than one turn's records over it.
    expect(f.size).toBeGreaterThanOrEqual(4096);
    expect(f.size).toBeLessThan(4096 + 10 * 200);
  }
  expect(seqs(log, 'alice')).toEqual(Array.from({ length: 300 }, (_, i) => i));
});

test('rotated files stay 0600 in 0700 directories', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-rot-'), maxBytes: 4096 });
  for (let i = 0; i < 100; i++) {
    log.write('bob', 'k', 'flow', { seq: i, pad: 'y'.repeat(60) });
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10));
  }
  await log.close();
  const files = userLogFiles(log.dir, 'bob');
  expect(files.length).toBeGreaterThan(1);
  for (const f of files) expect(statSync(f.path).mode & 0o777).toBe(0o600);
  expect(statSync(join(log.dir, 'archive')).mode & 0o777).toBe(0o700);
  expect(statSync(join(log.dir, 'archive', 'bob')).mode & 0o777).toBe(0o700);
});

test('a file written on an earlier day is rotated, under that day, when the log is opened again', async () => {
  const dataDir = tempDir('sightline-rot-');
  mkdirSync(join(dataDir, 'logs'), { mode: 0o700 });
  const yesterday = new Date(Date.now() - DAY);
  writeFileSync(join(dataDir, 'logs', 'carol.ndjson'), `${JSON.stringify({ seq: 0 })}\n`, { mode: 0o600 });
  utimesSync(join(dataDir, 'logs', 'carol.ndjson'), yesterday, yesterday);
  const log = new UserLog({ dataDir });
  log.write('carol', 'k', 'flow', { seq: 1 });
  await log.close();
  const files = userLogFiles(log.dir, 'carol');
  const day = yesterday.toISOString().slice(0, 10);
  expect(files.map((f) => f.path.slice(log.dir.length + 1))).toEqual([`archive/carol/${day}T000000Z.001.ndjson`, 'carol.ndjson']);
  expect(seqs(log, 'carol')).toEqual([0, 1]);
});

test('an open file is rotated at the period boundary while records keep coming', async () => {
  // A one-second period stands in for the UTC day (same library path, shorter wait).
  const log = new UserLog({ dataDir: tempDir('sightline-rot-'), rotateInterval: '1s' });
  log.write('dave', 'k', 'flow', { seq: 0 });
  await new Promise((r) => setTimeout(r, 1300));
  log.write('dave', 'k', 'flow', { seq: 1 });
  await log.close();
  const files = userLogFiles(log.dir, 'dave');
  expect(files.length).toBeGreaterThanOrEqual(2);
  expect(seqs(log, 'dave')).toEqual([0, 1]);
});

describe('retention (log.retentionDays)', () => {
  const NOW = Date.UTC(2026, 11, 31, 12);

  function layout(): string {
    const logs = join(tempDir('sightline-ret-'), 'logs');
    mkdirSync(join(logs, 'archive', 'alice'), { recursive: true });
    for (const day of ['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-30']) writeFileSync(join(logs, 'archive', 'alice', `${day}T000000Z.001.ndjson`), '{}\n');
    writeFileSync(join(logs, 'archive', 'alice', 'notes.txt'), 'not ours');
    for (const user of ['alice', 'gone', 'open']) {
      writeFileSync(join(logs, `${user}.ndjson`), '{}\n');
      const t = new Date(user === 'alice' ? NOW : NOW - 40 * DAY);
      utimesSync(join(logs, `${user}.ndjson`), t, t);
    }
    return logs;
  }

  test('rotated files whose day ended more than retentionDays ago are deleted; younger ones and foreign files stay', () => {
    const logs = layout();
    sweepExpired(logs, NOW, 30, new Set());
    expect(readdirSync(join(logs, 'archive', 'alice')).sort()).toEqual(['2026-12-01T000000Z.001.ndjson', '2026-12-30T000000Z.001.ndjson', 'notes.txt']);
  });

  test('a current file untouched for longer is deleted, unless its user is being written', () => {
    const logs = layout();
    sweepExpired(logs, NOW, 30, new Set(['open']));
    expect(readdirSync(logs).filter((n) => n.endsWith('.ndjson')).sort()).toEqual(['alice.ndjson', 'open.ndjson']);
  });

  test('the writer sweeps when it starts writing', async () => {
    const dataDir = tempDir('sightline-ret-');
    mkdirSync(join(dataDir, 'logs', 'archive', 'erin'), { recursive: true });
    const old = join(dataDir, 'logs', 'archive', 'erin', '2020-01-01T000000Z.001.ndjson');
    writeFileSync(old, '{}\n');
    const log = new UserLog({ dataDir, retentionDays: 30 });
    log.write('erin', 'k', 'flow');
    await log.close();
    expect(() => statSync(old)).toThrow();
  });
});

test('close() writes every record accepted before it, and records accepted during it', async () => {
  const log = new UserLog({ dataDir: tempDir('sightline-rot-') });
  for (let i = 0; i < 1000; i++) log.write(`u${i % 7}`, 'k', 'flow', { seq: i });
  const closing = log.close();
  log.write('u0', 'k', 'flow', { seq: 1000 });
  await closing;
  log.write('u1', 'k', 'flow', { seq: 1001 });
  const all = Array.from({ length: 7 }, (_, u) => seqs(log, `u${u}`)).flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: 1002 }, (_, i) => i));
});
