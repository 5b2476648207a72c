// Admin decisions about pinned hosts (pinned-admin.json, written by the CLI)
// and the concentrator's side that applies them without a restart and saves
// what it learned (pinned.json).

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PinningTracker } from '../../../../mitm';
import { createLogger } from '../../../../vpn/process';
import {
  PINNED_FILE, PinnedAdminError, approvePin, emptyPinnedAdmin, normalizePinHost, pinnedAdminPath, readPinnedAdmin, removePin, writePinnedAdmin,
} from '../../../../vpn/pinned';
import { PinnedSync } from '../../../../vpn/pinned';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sightline-pinned-admin-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const silent = createLogger('silent');
/** A sync whose timer never fires in the test: sync() is called by hand. */
const syncFor = (tracker: PinningTracker): PinnedSync => new PinnedSync(dir, tracker, silent, 3_600_000);

function learn(tracker: PinningTracker, user: string, host: string, at: number): void {
  for (let i = 0; i < tracker.threshold; i++) tracker.recordFailure(user, host, at + i);
}

describe('the admin file', () => {
  test('is written atomically with mode 0600 and read back', () => {
    const file = pinnedAdminPath(dir);
    const admin = emptyPinnedAdmin();
    expect(approvePin(admin, 'alice', 'bank.test', 5)).toBe(true);
    expect(approvePin(admin, 'alice', 'bank.test', 6)).toBe(false);
    writePinnedAdmin(file, admin);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readPinnedAdmin(file)).toEqual({ version: 1, approved: [{ user: 'alice', host: 'bank.test', at: 5 }], removed: [] });
  });

  test('a missing file means no decisions; a malformed one is an error naming it', () => {
    expect(readPinnedAdmin(join(dir, 'none.json'))).toEqual(emptyPinnedAdmin());
    const file = pinnedAdminPath(dir);
    writeFileSync(file, '{oops');
    expect(() => readPinnedAdmin(file)).toThrow(PinnedAdminError);
    expect(() => readPinnedAdmin(file)).toThrow(file);
  });

  test('a removal drops the approval and is recorded with its time', () => {
    const admin = emptyPinnedAdmin();
    approvePin(admin, 'alice', 'bank.test', 1);
    expect(removePin(admin, 'alice', 'bank.test', 2)).toEqual({ wasApproved: true });
    expect(admin).toEqual({ version: 1, approved: [], removed: [{ user: 'alice', host: 'bank.test', at: 2 }] });
  });

  test('hosts are normalised to lower case; IP literals are accepted (flows without SNI); junk is refused', () => {
    expect(normalizePinHost('Bank.TEST')).toBe('bank.test');
    expect(normalizePinHost('192.0.2.7')).toBe('192.0.2.7');
    expect(() => normalizePinHost('bank test')).toThrow(/invalid host/);
    expect(() => normalizePinHost('a..b')).toThrow(/invalid host/);
  });
});

describe('the running concentrator', () => {
  test('picks up an approval when the file changes, without a restart', () => {
    const sync = syncFor(new PinningTracker());
    try {
      expect(sync.approvals.isApproved('alice', 'bank.test')).toBe(false);
      const admin = emptyPinnedAdmin();
      approvePin(admin, 'alice', 'bank.test', Date.now());
      writePinnedAdmin(pinnedAdminPath(dir), admin);
      sync.sync();
      expect(sync.approvals.isApproved('alice', 'BANK.test')).toBe(true);
      expect(sync.approvals.isApproved('bob', 'bank.test')).toBe(false);
    } finally {
      sync.close();
    }
  });

  test('applies a removal to what it learned before, and saves the list', () => {
    const tracker = new PinningTracker();
    const sync = syncFor(tracker);
    try {
      learn(tracker, 'alice', 'app.test', Date.now() - 10_000);
      sync.sync();
      expect(JSON.parse(readFileSync(join(dir, PINNED_FILE), 'utf8')).pins).toHaveLength(1);
      const admin = emptyPinnedAdmin();
      removePin(admin, 'alice', 'app.test', Date.now());
      writePinnedAdmin(pinnedAdminPath(dir), admin);
      sync.sync();
      expect(tracker.isPinned('alice', 'app.test', Date.now())).toBe(false);
      expect(JSON.parse(readFileSync(join(dir, PINNED_FILE), 'utf8')).pins).toEqual([]);
    } finally {
      sync.close();
    }
  });

  test('saves a newly learned pin at the next sync, so the CLI lists it within a second or two', () => {
    const tracker = new PinningTracker();
    const sync = syncFor(tracker);
    try {
      learn(tracker, 'alice', 'app.test', Date.now());
      sync.sync();
      const saved = JSON.parse(readFileSync(join(dir, PINNED_FILE), 'utf8')) as { pins: Array<{ host: string }> };
      expect(saved.pins.map((p) => p.host)).toEqual(['app.test']);
      expect(statSync(join(dir, PINNED_FILE)).mode & 0o777).toBe(0o600);
    } finally {
      sync.close();
    }
  });

  test('a malformed admin file keeps the previous approvals in force', () => {
    const admin = emptyPinnedAdmin();
    approvePin(admin, 'alice', 'bank.test', 1);
    writePinnedAdmin(pinnedAdminPath(dir), admin);
    const sync = syncFor(new PinningTracker());
    try {
      writeFileSync(pinnedAdminPath(dir), 'not json at all');
      sync.sync();
      expect(sync.approvals.isApproved('alice', 'bank.test')).toBe(true);
    } finally {
      sync.close();
    }
  });
});
