// `sightline pinned approve/list/remove` as an admin uses them, without a
// running concentrator: decisions land in pinned-admin.json (0600), bad
// arguments exit 1 with a message, the retired config key exits 2.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN, buildOnce } from '../helpers/topology';

jest.setTimeout(120_000);

function sightline(dir: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [BIN, '--data-dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sightline pinned', () => {
  let dir: string;
  beforeAll(() => buildOnce());
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'cli-pinned-')), 'data');
  });
  afterEach(() => rmSync(dirname(dir), { recursive: true, force: true }));

  test('approve records the decision in a 0600 file, and list marks it APPROVED', () => {
    expect(sightline(dir, ['pinned', 'approve', 'alice', 'Bank.Example']).code).toBe(0);
    expect(statSync(join(dir, 'pinned-admin.json')).mode & 0o777).toBe(0o600);
    const list = sightline(dir, ['pinned', 'list']);
    expect(list.stdout).toMatch(/^tls\.pinning\.mode: learn\nalice\tbank\.example\tAPPROVED/);
    const json = JSON.parse(sightline(dir, ['pinned', 'list', '--json']).stdout) as { mode: string; pins: Array<{ user: string; host: string; status: string }> };
    expect(json).toMatchObject({ mode: 'learn', pins: [{ user: 'alice', host: 'bank.example', status: 'approved' }] });
  });

  test('approving twice is harmless; remove drops it', () => {
    sightline(dir, ['pinned', 'approve', 'alice', 'bank.example']);
    expect(sightline(dir, ['pinned', 'approve', 'alice', 'bank.example']).stderr).toContain('already approved');
    expect(sightline(dir, ['pinned', 'remove', 'alice', 'bank.example']).code).toBe(0);
    expect(sightline(dir, ['pinned', 'list']).stdout).toBe('tls.pinning.mode: learn\nno pinned hosts\n');
  });

  test('a learned host is listed as PENDING under mode approve, with how to approve it', () => {
    mkdirSync(dir, { mode: 0o700 });
    const now = Date.now();
    writeFileSync(join(dir, 'pinned.json'), JSON.stringify({ version: 1, pins: [{ user: 'bob', host: 'app.example', pinnedAt: now, until: now + 60_000, failures: 3 }] }));
    writeFileSync(join(dir, 'sightline.yaml'), 'tls:\n  pinning:\n    mode: approve\n');
    const out = sightline(dir, ['pinned', 'list']).stdout;
    expect(out).toContain('bob\tapp.example\tPENDING approval');
    expect(out).toContain('approve a pending host with: sightline pinned approve USER HOST');
  });

  test('bad arguments exit 1 with what to do', () => {
    const badHost = sightline(dir, ['pinned', 'approve', 'alice', 'not a host']);
    expect(badHost.code).toBe(1);
    expect(badHost.stderr).toContain('invalid host');
    const badUser = sightline(dir, ['pinned', 'approve', '-x', 'bank.example']);
    expect(badUser.code).not.toBe(0);
    const unknown = sightline(dir, ['pinned', 'remove', 'alice', 'never.example']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('neither learned nor approved (see: sightline pinned list)');
  });

  test('the retired tls.pinning.bypass key is a configuration error (exit 2) that says how to migrate', () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'sightline.yaml'), 'tls:\n  pinning:\n    bypass: false\n');
    const r = sightline(dir, ['pinned', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tls.pinning.bypass: expected tls.pinning.mode instead');
  });
});
