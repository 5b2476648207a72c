// `sightline policy show` and `policy explain`, run in-process through the
// CLI's main(): output, exit status 0, and 2 for an invalid query or config.
import { join } from 'node:path';
import { main } from '../../../vpn/cli';
import { TempDir } from '../policy/helpers';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  const umask = process.umask();
  process.exitCode = 0;
  try {
    await main(['node', 'sightline', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.umask(umask);
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}

const CONFIG = `groups:
  finance: [bob]
policy:
  categories:
    my-banks: banks.txt
  rules:
    - id: finance-db
      action: allow
      dst: [10.20.0.0/16]
      groups: [finance]
    - id: db-closed
      action: block
      dst: [10.20.0.0/16]
    - id: banks
      action: bypass
      categories: [my-banks]
    - id: tls
      action: inspect
      protocol: tcp
      ports: [443]
`;

describe('sightline policy', () => {
  let dir: TempDir;
  let cfg: string[];
  beforeEach(() => {
    dir = new TempDir();
    dir.write('banks.txt', 'bank.example\n');
    cfg = ['--config', dir.write('sightline.yaml', CONFIG), '--data-dir', join(dir.path, 'data')];
  });
  afterEach(() => dir.cleanup());

  test('show lists the admin rules in order and the categories with domain counts', async () => {
    const r = await run(['policy', 'show', ...cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0 +finance-db +allow +dst 10\.20\.0\.0\/16; groups finance\n/);
    expect(r.stdout).toMatch(/3 +tls +inspect +protocol tcp; ports 443\n/);
    expect(r.stdout).toMatch(/4 +no-match +allow +every flow +\[implicit\]/);
    expect(r.stdout).toMatch(/my-banks +1 +admin +banks/);
    expect(r.stdout).toMatch(/privacy-finance +\d+ +shipped/);
  });

  test('show without policy.rules marks the built-in defaults', async () => {
    const r = await run(['policy', 'show', '--config', dir.write('empty.yaml', ''), '--json']);
    const shown = JSON.parse(r.stdout) as { usesDefaults: boolean; rules: { id: string; origin: string }[] };
    expect(shown.usesDefaults).toBe(true);
    expect(shown.rules.map((x) => `${x.id}:${x.origin}`)).toEqual(['privacy:default', 'inspect-tls:default', 'allow-rest:default', 'no-match:implicit']);
  });

  test('explain names the action, the rule and each matched field', async () => {
    const r = await run(['policy', 'explain', '--user', 'bob', '--dst', '10.20.3.4:5432', ...cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('action   allow\n');
    expect(r.stdout).toContain('rule     finance-db (policy.rules.0)\n');
    expect(r.stdout).toContain('matched  dst: 10.20.0.0/16 contains 10.20.3.4\n');
    expect(r.stdout).toContain('         groups: bob is a member of group finance\n');
  });

  test('explain says why earlier rules were passed over', async () => {
    const r = await run(['policy', 'explain', '--user', 'alice', '--dst', '10.20.3.4:443', '--sni', 'www.bank.example', '--json', ...cfg]);
    const e = JSON.parse(r.stdout) as { action: string; rule: string; skipped: { rule: string; field: string }[] };
    expect(e).toMatchObject({ action: 'block', rule: 'db-closed' });
    expect(e.skipped).toEqual([expect.objectContaining({ rule: 'finance-db', field: 'groups' })]);
  });

  test('explain with an SNI matches categories; without, it says the name could matter', async () => {
    const withName = await run(['policy', 'explain', '--user', 'alice', '--dst', '192.0.2.1:443', '--sni', 'WWW.Bank.Example.', ...cfg]);
    expect(withName.stdout).toContain('rule     banks (policy.rules.2)');
    expect(withName.stdout).toContain('categories: www.bank.example is in category my-banks (listed as bank.example)');
    const without = await run(['policy', 'explain', '--user', 'alice', '--dst', '192.0.2.1:443', ...cfg]);
    expect(without.stdout).toContain('rule     tls (policy.rules.3)');
    expect(without.stdout).toMatch(/note +with an SNI\/Host an earlier rule/);
  });

  test('explain accepts IPv6 destinations in brackets and ICMP without a port', async () => {
    expect((await run(['policy', 'explain', '--user', 'a', '--dst', '[fd00::5]:443', ...cfg])).code).toBe(0);
    expect((await run(['policy', 'explain', '--user', 'a', '--dst', '10.20.0.1', '--protocol', 'icmp', ...cfg])).stdout).toContain('rule     db-closed');
  });

  test.each([
    [['--dst', '10.20.0.1'], /invalid --dst "10\.20\.0\.1": expected ADDR:PORT/],
    [['--dst', '10.20.0.1:0'], /invalid --dst "10\.20\.0\.1:0": expected ADDR:PORT with an IP address and a port 1-65535/],
    [['--dst', 'intranet:443'], /invalid --dst "intranet:443"/],
    [['--dst', '300.1.1.1:443'], /invalid --dst "300\.1\.1\.1:443"/],
    [['--dst', '10.0.0.1:443', '--protocol', 'sctp'], /invalid --protocol "sctp": expected tcp, udp or icmp/],
    [['--dst', '10.0.0.1:443', '--sni', 'not a name'], /invalid --sni "not a name": expected a host name/],
  ])('an invalid query %j exits 2 with a clear message', async (args, message) => {
    const r = await run(['policy', 'explain', '--user', 'alice', ...args, ...cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  test.each([
    [['--dst', '10.0.0.1:443'], /required option '--user <user>' not specified/],
    [['--user', 'alice'], /required option '--dst <addr:port>' not specified/],
    [['--user', 'alice', '--dst', '10.0.0.1:443', '--port', '443'], /unknown option '--port'/],
    [['--user', 'alice', '--dst'], /option '--dst <addr:port>' argument missing/],
  ])('a query commander refuses %j is an invalid query too: exit 2', async (args, message) => {
    const r = await run(['policy', 'explain', ...args, ...cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  test('explain --help still exits 0', async () => {
    const r = await run(['policy', 'explain', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--sni <name>');
  });

  test('an invalid configuration exits 2 with file and line', async () => {
    const bad = dir.write('bad.yaml', 'policy:\n  rules:\n    - { id: x, action: allow, groups: [nobody] }\n');
    const r = await run(['policy', 'explain', '--user', 'a', '--dst', '10.0.0.1:443', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3:`);
  });
});
