// `sightline logs`: a user's records read back in time order across rotated
// files, filtered by --since/--until/--type/--grep, with files outside the
// range skipped whole and --follow going on across a rotation.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { followUserLog, formatRecord, parseTime, parseTypes, readUserLog, UserLog, userLogFiles, type LogLine, type LogQuery } from '../../../../vpn/logs';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';

afterAll(removeTempDirs);

const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);
const SEC = 1000;
const iso = (ms: number): string => new Date(ms).toISOString();
const TYPES = ['flow', 'dns', 'session', 'http'];

/** 400 records one second apart (seq = second), types cycling, rotated every 4 KiB. */
async function writeLog(): Promise<UserLog> {
  let now = T0;
  const log = new UserLog({ dataDir: tempDir('sightline-read-'), maxBytes: 4096, now: () => now });
  for (let i = 0; i < 400; i++) {
    now = T0 + i * SEC;
    log.write('alice', 'KEY', TYPES[i % 4], { seq: i, host: i % 50 === 7 ? 'Payroll.Example' : `h${i}.test` }, 'laptop');
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
  }
  log.write('bob', 'KEYB', 'flow', { seq: 0 }, 'phone');
  await log.close();
  return log;
}

async function read(log: UserLog, q: LogQuery): Promise<{ seqs: number[]; scanned: number; skipped: number }> {
  const got: LogLine[] = [];
  const end = await readUserLog(log.dir, 'alice', q, (l) => got.push(l));
  return { seqs: got.map((l) => l.record.seq as number), scanned: end.scanned, skipped: end.skipped };
}

let log: UserLog;
beforeAll(async () => {
  log = await writeLog();
});

test('the fixture spans many rotated files', () => {
  expect(userLogFiles(log.dir, 'alice').length).toBeGreaterThan(8);
});

test('without filters: every record of the user, in time order, across the files; no other user', async () => {
  expect((await read(log, {})).seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
});

test('--since and --until are inclusive bounds, and files wholly outside them are skipped', async () => {
  const r = await read(log, { since: iso(T0 + 150 * SEC), until: iso(T0 + 160 * SEC) });
  expect(r.seqs).toEqual(Array.from({ length: 11 }, (_, i) => 150 + i));
  expect(r.scanned).toBeLessThanOrEqual(2);
  expect(r.skipped).toBeGreaterThan(0);
});

test('--since alone reads to the end; --until alone from the start', async () => {
  expect((await read(log, { since: iso(T0 + 395 * SEC) })).seqs).toEqual([395, 396, 397, 398, 399]);
  expect((await read(log, { until: iso(T0 + 2 * SEC) })).seqs).toEqual([0, 1, 2]);
});

test('--type keeps only the named types (a list is allowed)', async () => {
  expect((await read(log, { types: new Set(['dns']), until: iso(T0 + 20 * SEC) })).seqs).toEqual([1, 5, 9, 13, 17]);
  expect((await read(log, { types: new Set(['dns', 'session']), until: iso(T0 + 8 * SEC) })).seqs).toEqual([1, 2, 5, 6]);
});

test('--grep matches text anywhere in the record, ignoring case', async () => {
  expect((await read(log, { grep: 'payroll.EXAMPLE' })).seqs).toEqual([7, 57, 107, 157, 207, 257, 307, 357]);
  expect((await read(log, { grep: 'payroll', types: new Set(['session']), since: iso(T0 + 100 * SEC) })).seqs).toEqual([]);
  expect((await read(log, { grep: 'laptop', until: iso(T0) })).seqs).toEqual([0]);
});

test('a range inside one large file is found by binary search, exactly', async () => {
  let now = T0;
  const big = new UserLog({ dataDir: tempDir('sightline-read-'), maxBytes: 64 * 1024 * 1024, now: () => now });
  for (let i = 0; i < 20_000; i++) {
    now = T0 + i * 10;
    big.write('carol', 'K', 'flow', { seq: i, pad: 'z'.repeat(60) });
  }
  await big.close();
  const got: number[] = [];
  await readUserLog(big.dir, 'carol', { since: iso(T0 + 123_450), until: iso(T0 + 123_480) }, (l) => got.push(l.record.seq as number));
  expect(got).toEqual([12345, 12346, 12347, 12348]);
});

test('a torn last line (a crash mid-write) and foreign lines are skipped, not fatal', async () => {
  const dataDir = tempDir('sightline-read-');
  mkdirSync(join(dataDir, 'logs'));
  const line = (s: number): string => JSON.stringify({ level: 'info', time: iso(T0 + s * SEC), type: 'flow', user: 'dan', peer: 'K', device: null, seq: s });
  writeFileSync(join(dataDir, 'logs', 'dan.ndjson'), `${line(0)}\nnot json at all\n${line(1)}\n{"level":"info","time":"2026-12-01T09:00:0`);
  const got: number[] = [];
  await readUserLog(join(dataDir, 'logs'), 'dan', {}, (l) => got.push(l.record.seq as number));
  expect(got).toEqual([0, 1]);
});

test('--follow prints records appended later, also after the file was rotated', async () => {
  const fl = new UserLog({ dataDir: tempDir('sightline-follow-'), maxBytes: 4096 });
  fl.write('erin', 'K', 'flow', { seq: 0 });
  await fl.close();
  const w = new UserLog({ dataDir: join(fl.dir, '..'), maxBytes: 4096 });
  const got: number[] = [];
  const end = await readUserLog(fl.dir, 'erin', {}, (l) => got.push(l.record.seq as number));
  const stop = new AbortController();
  const following = followUserLog(fl.dir, 'erin', end, { types: new Set(['flow']) }, (l) => got.push(l.record.seq as number), stop.signal, 20);
  for (let i = 1; i <= 120; i++) {
    w.write('erin', 'K', i % 10 === 0 ? 'dns' : 'flow', { seq: i, pad: 'p'.repeat(50) });
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 15));
  }
  await w.close();
  const want = Array.from({ length: 121 }, (_, i) => i).filter((i) => i === 0 || i % 10 !== 0);
  for (let waited = 0; waited < 5000 && got.length < want.length; waited += 20) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  await following;
  expect(userLogFiles(fl.dir, 'erin').length).toBeGreaterThan(1);
  expect(got).toEqual(want);
});

test('--follow picks up a line completed after it was first seen half-written', async () => {
  const dataDir = tempDir('sightline-follow-');
  const logs = join(dataDir, 'logs');
  mkdirSync(logs);
  const file = join(logs, 'fay.ndjson');
  const line = JSON.stringify({ level: 'info', time: iso(T0), type: 'dns', user: 'fay', peer: 'K', device: null, seq: 1 });
  writeFileSync(file, line.slice(0, 30));
  const end = await readUserLog(logs, 'fay', {}, () => undefined);
  const got: number[] = [];
  const stop = new AbortController();
  const following = followUserLog(logs, 'fay', end, {}, (l) => got.push(l.record.seq as number), stop.signal, 20);
  await new Promise((r) => setTimeout(r, 60));
  appendFileSync(file, `${line.slice(30)}\n`);
  for (let waited = 0; waited < 3000 && got.length === 0; waited += 20) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  await following;
  expect(got).toEqual([1]);
});

describe('TIME arguments', () => {
  const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
  test.each([
    ['15m', '2026-12-01T11:45:00.000Z'],
    ['2h', '2026-12-01T10:00:00.000Z'],
    ['1d', '2026-11-30T12:00:00.000Z'],
    ['30s', '2026-12-01T11:59:30.000Z'],
    ['2026-11-20', '2026-11-20T00:00:00.000Z'],
    ['2026-11-20T08:30:00Z', '2026-11-20T08:30:00.000Z'],
    ['2026-11-20T08:30', '2026-11-20T08:30:00.000Z'],
    ['2026-11-20T10:30:00+02:00', '2026-11-20T08:30:00.000Z'],
  ])('%s → %s', (text, want) => {
    expect(parseTime(text, '--since', NOW)).toBe(want);
  });

  test.each(['yesterday', '15', '5y', '2026-13-45', ''])('%j is refused with the accepted forms', (text) => {
    expect(() => parseTime(text, '--since', NOW)).toThrow(/--since .*ISO 8601.*15m/);
  });

  test('unknown record types are refused with the known ones', () => {
    expect(() => parseTypes('dns,flws')).toThrow(/unknown record type "flws"; known: flow, flow_end/);
    expect([...parseTypes('dns, flow')]).toEqual(['dns', 'flow']);
  });
});

test('a record reads as one line: time, device, type, then its fields', () => {
  const line = formatRecord({ level: 'info', time: '2026-12-01T09:00:00.000Z', type: 'dns', user: 'alice', peer: 'K', device: 'laptop', latencyMs: 2, name: 'a.test', qtype: 'A', rcode: 'NOERROR', answers: 1, upstream: '10.0.0.53:53' });
  expect(line).toBe('2026-12-01T09:00:00.000Z  laptop  dns           name=a.test qtype=A rcode=NOERROR answers=1 latencyMs=2 upstream=10.0.0.53:53');
  expect(line).not.toContain('\n');
  expect(formatRecord({ time: 't', type: 'http', device: null, path: '/a b\nc' })).toBe('t  -  http          path="/a b\\nc"');
});
