// Issue 8, bounded resources: egress may not take the process's last file
// descriptors. The budget counts egress sockets as they open and close and
// re-measures everything else only when asked (never per packet).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultReserve, FdBudget, readNofileLimit } from '../../../netstack/egress/fd_budget';

test('the reserve is 64 descriptors, or 5% of the limit when that is more', () => {
  expect(defaultReserve(256)).toBe(64);
  expect(defaultReserve(1024)).toBe(64);
  expect(defaultReserve(65536)).toBe(3277);
});

test('the soft "Max open files" limit is read from /proc/self/limits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'limits-'));
  try {
    const file = join(dir, 'limits');
    writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n');
    expect(readNofileLimit(file)).toBe(1024);
    writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
    expect(readNofileLimit(file)).toBe(Infinity);
    expect(readNofileLimit(join(dir, 'missing'))).toBe(Infinity);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('this process has a finite limit on Linux', () => {
  expect(Number.isFinite(readNofileLimit())).toBe(true);
});

test('new flows are refused once egress sockets would eat into the reserve, and admitted again when they close', () => {
  const b = new FdBudget({ limit: 200, reserve: 64, countOpen: () => 30 });
  for (let i = 0; i < 105; i++) b.opened();
  expect(b.hasRoom()).toBe(true); // 30 + 105 = 135 < 136
  b.opened();
  expect(b.hasRoom()).toBe(false);
  b.closed();
  expect(b.hasRoom()).toBe(true);
});

test('recalibration re-measures the other descriptors (logs, SQLite, DNS) without counting egress twice', () => {
  let open = 30;
  const b = new FdBudget({ limit: 200, reserve: 64, countOpen: () => open });
  for (let i = 0; i < 50; i++) b.opened();
  open = 30 + 50 + 60; // 60 descriptors opened elsewhere since the last look
  expect(b.snapshot()).toEqual({ limit: 200, reserve: 64, open: 80, egress_sockets: 50 });
  b.recalibrate();
  expect(b.snapshot()).toEqual({ limit: 200, reserve: 64, open: 140, egress_sockets: 50 });
  expect(b.hasRoom()).toBe(false);
});

test('an unknown limit never refuses', () => {
  const b = new FdBudget({ limit: Infinity, countOpen: () => 1_000_000 });
  for (let i = 0; i < 10_000; i++) b.opened();
  expect(b.hasRoom()).toBe(true);
  expect(b.snapshot().limit).toBe(0);
});
