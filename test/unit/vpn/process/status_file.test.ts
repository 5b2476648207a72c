// status.json stays cheap with many peers: rewritten only on change (and less
// often with many peers), its mtime refreshed otherwise so `sightline status`
// still sees a live concentrator.
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusFile, peersFingerprint } from '../../../../vpn/process';
import { PrivateKey, WgDevice, type WgPeer } from '../../../../vpn/protocol';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'status-file-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(): string {
  return join(dir, 'status.json');
}

function age(path: string): void {
  const old = new Date(Date.now() - 60_000);
  utimesSync(path, old, old);
}

describe('StatusFile', () => {
  test('the first update writes the file', () => {
    const f = new StatusFile(file(), 1000);
    expect(f.update(0, 1, 'a', () => 'one\n')).toBe('written');
    expect(readFileSync(file(), 'utf8')).toBe('one\n');
  });

  test('an unchanged status is not rewritten, but its mtime is refreshed', () => {
    const f = new StatusFile(file(), 1000);
    f.update(0, 1, 'a', () => 'one\n');
    age(file());
    let rendered = false;
    expect(f.update(1000, 1, 'a', () => ((rendered = true), 'two\n'))).toBe('touched');
    expect(rendered).toBe(false);
    expect(readFileSync(file(), 'utf8')).toBe('one\n');
    expect(Date.now() - statSync(file()).mtimeMs).toBeLessThan(5000);
  });

  test('a changed status is rewritten once the interval passed', () => {
    const f = new StatusFile(file(), 1000);
    f.update(0, 1, 'a', () => 'one\n');
    expect(f.update(500, 1, 'b', () => 'two\n')).toBe('touched');
    expect(f.update(1000, 1, 'b', () => 'two\n')).toBe('written');
    expect(readFileSync(file(), 'utf8')).toBe('two\n');
  });

  test('with 10,000 peers a change is written at most every 5 s', () => {
    const f = new StatusFile(file(), 1000);
    f.update(0, 10_000, 'a', () => 'one\n');
    expect(f.update(4999, 10_000, 'b', () => 'two\n')).toBe('touched');
    expect(f.update(5000, 10_000, 'b', () => 'two\n')).toBe('written');
  });

  test('an unchanged status is still rewritten every 30 s', () => {
    const f = new StatusFile(file(), 1000);
    f.update(0, 1, 'a', () => 'one\n');
    expect(f.update(30_000, 1, 'a', () => 'again\n')).toBe('written');
    expect(readFileSync(file(), 'utf8')).toBe('again\n');
  });

  test('a file that cannot be written throws, for the caller to log', () => {
    writeFileSync(join(dir, 'blocker'), '');
    const f = new StatusFile(join(dir, 'blocker', 'status.json'), 1000);
    expect(() => f.update(0, 1, 'a', () => 'x')).toThrow();
  });
});

describe('peersFingerprint', () => {
  function peers(n: number): WgPeer[] {
    const device = new WgDevice({ privateKey: PrivateKey.generate(), wallClock: Date.now });
    return Array.from({ length: n }, () => device.addPeer({ publicKey: PrivateKey.generate().publicKey() }));
  }

  test('is stable while nothing changes', () => {
    const ps = peers(3);
    expect(peersFingerprint(ps, 10_000)).toBe(peersFingerprint(ps, 10_400));
  });

  test.each<[string, (p: WgPeer) => void]>([
    ['received bytes', (p) => (p.rxBytes += 148)],
    ['sent bytes', (p) => (p.txBytes += 2 ** 33)],
    ['endpoint', (p) => (p.endpoint = { address: '192.0.2.7', port: 51820 })],
    ['handshake', (p) => (p.lastHandshakeAt = 9000)],
  ])('changes with a peer’s %s', (_what, change) => {
    const ps = peers(3);
    const before = peersFingerprint(ps, 10_000);
    change(ps[1]);
    expect(peersFingerprint(ps, 10_000)).not.toBe(before);
  });

  test('changes as a handshake ages by a second (status shows seconds ago)', () => {
    const ps = peers(1);
    ps[0].lastHandshakeAt = 0;
    expect(peersFingerprint(ps, 10_000)).not.toBe(peersFingerprint(ps, 11_000));
  });
});
