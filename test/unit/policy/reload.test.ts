// Hot reload: a valid new config replaces the policy for new flows; an invalid
// one (config or category file) leaves the running policy in place and says
// what is wrong, with file and line.
import { join } from 'node:path';
import { unlinkSync } from 'node:fs';
import { compilePolicy, PolicyHolder } from '../../../policy';
import { loadConfigFile } from '../../../vpn/config';
import { query, ruleFor, TempDir } from './helpers';

describe('policy reload', () => {
  let dir: TempDir;
  let file: string;
  let holder: PolicyHolder;
  const load = () => loadConfigFile(file).config;

  beforeEach(() => {
    dir = new TempDir();
    file = dir.write('sightline.yaml', 'policy:\n  rules:\n    - { id: old, action: allow }\n');
    holder = new PolicyHolder(compilePolicy(load()));
  });
  afterEach(() => dir.cleanup());

  test('a valid change applies to the next decision', () => {
    dir.write('sightline.yaml', 'policy:\n  rules:\n    - { id: new, action: block, ports: [443] }\n');
    const r = holder.reload(load);
    expect(r).toMatchObject({ ok: true, generation: 2 });
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443))).toBe('new');
  });

  test('a policy already handed out keeps deciding as before (existing flows are untouched)', () => {
    const before = holder.current;
    dir.write('sightline.yaml', 'policy:\n  rules:\n    - { id: new, action: block }\n');
    holder.reload(load);
    expect(ruleFor(before, query('a', '192.0.2.1'))).toBe('old');
  });

  test('an invalid config keeps the old policy and returns the error with file and line', () => {
    dir.write('sightline.yaml', 'policy:\n  rules:\n    - { id: broken, action: deny }\n');
    const r = holder.reload(load);
    expect(r).toEqual({ ok: false, generation: 1, error: expect.stringMatching(new RegExp(`^${file}:3:\\d+: policy\\.rules\\.0\\.action: expected one of`)) as unknown });
    expect(ruleFor(holder.current, query('a', '192.0.2.1'))).toBe('old');
  });

  test('a category file with a bad line keeps the old policy and names that file and line', () => {
    const list = dir.write('banks.txt', 'bank.example\nnot a domain\n');
    dir.write('sightline.yaml', `policy:\n  categories:\n    banks: ${list}\n  rules:\n    - { id: b, action: bypass, categories: [banks] }\n`);
    const r = holder.reload(load);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain(`${list}:2: expected a domain name like example.com, found "not a domain"`);
    expect(holder.current.rules[0].verdict.rule).toBe('old');
  });

  test('a category file that disappears between validation and compile keeps the old policy', () => {
    const list = dir.write('banks.txt', 'bank.example\n');
    dir.write('sightline.yaml', `policy:\n  categories:\n    banks: ${list}\n  rules:\n    - { id: b, action: bypass, categories: [banks] }\n`);
    const r = holder.reload(() => {
      const c = load();
      unlinkSync(join(dir.path, 'banks.txt'));
      return c;
    });
    expect(r).toMatchObject({ ok: false, error: expect.stringContaining(`cannot read category file ${list}`) as unknown });
    expect(holder.generation).toBe(1);
  });
});
