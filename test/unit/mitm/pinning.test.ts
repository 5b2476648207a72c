// PinningTracker on a fake clock: a learned exclusion per (user, host) after
// N rejections within a window, that ages out and survives a restart.

import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALERT_BAD_CERTIFICATE, ALERT_CERTIFICATE_EXPIRED, ALERT_CERTIFICATE_REVOKED, ALERT_CERTIFICATE_UNKNOWN, ALERT_UNKNOWN_CA, ALERT_UNSUPPORTED_CERTIFICATE,
  PinningError, PinningTracker, alertName, isCertificateRejection, rejectionAlertOf,
} from '../../../mitm/pinning';

const MIN = 60_000;
const opts = { threshold: 3, windowMs: 5 * MIN, ttlMs: 24 * 60 * MIN };

test('the third failure within the window flips the host to pinned, exactly once', () => {
  const t = new PinningTracker(opts);
  expect(t.recordFailure('alice', 'bank.test', 0)).toEqual({ failures: 1, flipped: false });
  expect(t.recordFailure('alice', 'bank.test', MIN)).toEqual({ failures: 2, flipped: false });
  expect(t.isPinned('alice', 'bank.test', MIN)).toBe(false);
  expect(t.recordFailure('alice', 'bank.test', 2 * MIN)).toEqual({ failures: 3, flipped: true });
  expect(t.isPinned('alice', 'bank.test', 2 * MIN)).toBe(true);
  expect(t.recordFailure('alice', 'bank.test', 3 * MIN).flipped).toBe(false);
});

test('failures spread wider than the window never pin (a flaky network is not a pinned app)', () => {
  const t = new PinningTracker(opts);
  for (let i = 0; i < 10; i++) expect(t.recordFailure('alice', 'slow.test', i * 3 * MIN).flipped).toBe(false);
  expect(t.isPinned('alice', 'slow.test', 30 * MIN)).toBe(false);
});

test('pins are per user: another user of the same host is still inspected', () => {
  const t = new PinningTracker(opts);
  for (let i = 0; i < 3; i++) t.recordFailure('alice', 'app.test', i);
  expect(t.isPinned('alice', 'app.test', 10)).toBe(true);
  expect(t.isPinned('bob', 'app.test', 10)).toBe(false);
});

test('a pin expires after its TTL and the host is inspected again', () => {
  const t = new PinningTracker(opts);
  for (let i = 0; i < 3; i++) t.recordFailure('alice', 'app.test', i);
  expect(t.isPinned('alice', 'app.test', opts.ttlMs + 1)).toBe(true);
  expect(t.isPinned('alice', 'app.test', opts.ttlMs + 2)).toBe(false);
  expect(t.list(opts.ttlMs + 2)).toEqual([]);
});

test('a success clears pending failures but does not undo an established pin', () => {
  const t = new PinningTracker(opts);
  t.recordFailure('alice', 'a.test', 0);
  t.recordFailure('alice', 'a.test', 1);
  t.recordSuccess('alice', 'a.test', 2);
  expect(t.recordFailure('alice', 'a.test', 3)).toEqual({ failures: 1, flipped: false });
  for (let i = 0; i < 3; i++) t.recordFailure('alice', 'b.test', i);
  t.recordSuccess('alice', 'b.test', 10);
  expect(t.isPinned('alice', 'b.test', 11)).toBe(true);
});

test('host names compare case-insensitively (DNS names are, RFC 4343)', () => {
  const t = new PinningTracker(opts);
  t.recordFailure('alice', 'App.Test', 0);
  t.recordFailure('alice', 'app.test', 1);
  t.recordFailure('alice', 'APP.TEST', 2);
  expect(t.isPinned('alice', 'app.test', 3)).toBe(true);
});

test('list() reports user, host, failures and expiry for the CLI', () => {
  const t = new PinningTracker(opts);
  for (let i = 0; i < 3; i++) t.recordFailure('bob', 'pinned.test', 1000 + i);
  expect(t.list(5000)).toEqual([{ user: 'bob', host: 'pinned.test', pinnedAt: 1002, until: 1002 + opts.ttlMs, failures: 3 }]);
});

test('the tracked set is bounded: the least recently touched entries are dropped first', () => {
  const t = new PinningTracker({ ...opts, maxEntries: 100 });
  for (let i = 0; i < 1000; i++) t.recordFailure('mallory', `h${i}.test`, i);
  expect(t.size).toBe(100);
});

describe('persistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sightline-pins-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('pins survive a restart through save/load, written with mode 0600', () => {
    const file = join(dir, 'pins.json');
    const a = new PinningTracker(opts);
    for (let i = 0; i < 3; i++) a.recordFailure('alice', 'app.test', i);
    a.save(file, 10);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const b = new PinningTracker(opts);
    expect(b.load(file, 20)).toBe(1);
    expect(b.isPinned('alice', 'app.test', 20)).toBe(true);
    expect(b.isPinned('alice', 'app.test', opts.ttlMs + 3)).toBe(false);
  });

  test('expired pins are not loaded, and a missing file is an empty list', () => {
    const file = join(dir, 'pins.json');
    const a = new PinningTracker(opts);
    for (let i = 0; i < 3; i++) a.recordFailure('alice', 'app.test', i);
    a.save(file, 10);
    expect(new PinningTracker(opts).load(file, opts.ttlMs + 100)).toBe(0);
    expect(new PinningTracker(opts).load(join(dir, 'none.json'), 0)).toBe(0);
  });

  test('a corrupt state file is reported with its path instead of silently dropping pins', () => {
    const file = join(dir, 'pins.json');
    writeFileSync(file, '{not json');
    expect(() => new PinningTracker(opts).load(file, 0)).toThrow(PinningError);
    expect(() => new PinningTracker(opts).load(file, 0)).toThrow(file);
    writeFileSync(file, JSON.stringify({ version: 2 }));
    expect(() => new PinningTracker(opts).load(file, 0)).toThrow(/version/);
  });

  test('malformed entries are skipped, valid ones kept', () => {
    const file = join(dir, 'pins.json');
    writeFileSync(file, JSON.stringify({ version: 1, pins: [{ user: 'a' }, { user: 'a', host: 'h.test', pinnedAt: 0, until: 100, failures: 3 }] }));
    const t = new PinningTracker(opts);
    expect(t.load(file, 1)).toBe(1);
    expect(t.list(1)).toEqual([{ user: 'a', host: 'h.test', pinnedAt: 0, until: 100, failures: 3 }]);
  });
});

describe('what counts as the client refusing our certificate', () => {
  test('the certificate-rejecting fatal alerts of RFC 8446 §6.2 count', () => {
    for (const alert of [ALERT_BAD_CERTIFICATE, ALERT_UNSUPPORTED_CERTIFICATE, ALERT_CERTIFICATE_REVOKED, ALERT_CERTIFICATE_EXPIRED, ALERT_CERTIFICATE_UNKNOWN, ALERT_UNKNOWN_CA]) {
      expect(isCertificateRejection({ kind: 'alert', alert })).toBe(true);
    }
  });

  test('alerts about negotiation, crypto, access or OCSP status are not a verdict on our certificate', () => {
    // handshake_failure, illegal_parameter, access_denied, decrypt_error, protocol_version, internal_error, bad_certificate_status_response
    for (const alert of [40, 47, 49, 51, 70, 80, 113]) expect(isCertificateRejection({ kind: 'alert', alert })).toBe(false);
  });

  test('a bare close or a reset before the client Finished is no evidence (anyone can abort a handshake)', () => {
    expect(isCertificateRejection({ kind: 'closed_before_finished' })).toBe(false);
    expect(isCertificateRejection({ kind: 'other', detail: 'timeout' })).toBe(false);
  });

  test('OpenSSL error codes for received alerts map to the alert numbers, with their RFC names', () => {
    expect(rejectionAlertOf('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')).toBe(48);
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE')).toBe(42);
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE')).toBe(43);
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED')).toBe(44);
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED')).toBe(45);
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN')).toBe(46);
    expect(rejectionAlertOf('ECONNRESET')).toBeNull();
    expect(rejectionAlertOf('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE')).toBeNull();
    expect(alertName(48)).toBe('unknown_ca');
    expect(alertName(99)).toBe('alert_99');
  });
});

describe('an admin\'s removal ("inspect this again")', () => {
  test('forgets a pin learned before the removal', () => {
    const t = new PinningTracker(opts);
    for (let i = 0; i < 3; i++) t.recordFailure('alice', 'app.test', i);
    expect(t.unpin('alice', 'app.test', 100)).toBe(true);
    expect(t.isPinned('alice', 'app.test', 101)).toBe(false);
  });

  test('leaves a pin learned after the removal in place (the removal is re-applied whenever its file is read)', () => {
    const t = new PinningTracker(opts);
    for (let i = 0; i < 3; i++) t.recordFailure('alice', 'app.test', 200 + i);
    expect(t.unpin('alice', 'app.test', 100)).toBe(false);
    expect(t.isPinned('alice', 'app.test', 300)).toBe(true);
  });

  test('a learned or removed pin bumps the version the owner saves on; pending failures do not', () => {
    const t = new PinningTracker(opts);
    t.recordFailure('alice', 'app.test', 0);
    t.recordFailure('alice', 'app.test', 1);
    expect(t.version).toBe(0);
    t.recordFailure('alice', 'app.test', 2);
    expect(t.version).toBe(1);
    t.unpin('alice', 'app.test');
    expect(t.version).toBe(2);
  });
});

test('invalid configuration is refused with a message', () => {
  expect(() => new PinningTracker({ threshold: 0 })).toThrow(/threshold/);
  expect(() => new PinningTracker({ windowMs: 0 })).toThrow(/windowMs/);
});
