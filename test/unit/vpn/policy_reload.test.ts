// The running concentrator's hot reload of the policy: a valid change to the
// config or to an admin category file replaces the policy for new flows; an
// invalid one keeps the running policy, and its error (file and line) is
// logged, counted and kept for `sightline status`.
import { compilePolicy, PolicyHolder } from '../../../policy';
import { loadConfigFile } from '../../../vpn/config';
import { PolicyReloader } from '../../../vpn/flow_policy';
import { query, ruleFor, TempDir } from '../policy/helpers';

const RULES = (id: string) => `policy:\n  rules:\n    - { id: ${id}, action: block, ports: [443] }\n`;

describe('PolicyReloader', () => {
  let dir: TempDir;
  let file: string;
  let holder: PolicyHolder;
  let reloader: PolicyReloader;
  let logged: Array<{ level: string; fields: Record<string, unknown> }>;

  const make = (debounceMs = 50) => {
    const config = loadConfigFile(file).config;
    holder = new PolicyHolder(compilePolicy(config));
    const log = (level: string) => (fields: Record<string, unknown>) => logged.push({ level, fields });
    reloader = new PolicyReloader({ holder, configPath: file, running: config, log: { info: log('info'), warn: log('warn'), error: log('error') }, debounceMs });
    return reloader;
  };

  beforeEach(() => {
    dir = new TempDir();
    file = dir.write('sightline.yaml', RULES('first'));
    logged = [];
  });
  afterEach(() => {
    reloader.stop();
    dir.cleanup();
  });

  test('a valid change is applied to the next decision, and counted', () => {
    make();
    dir.write('sightline.yaml', RULES('second'));
    expect(reloader.reload('SIGHUP')).toMatchObject({ ok: true, generation: 2 });
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443))).toBe('second');
    expect(reloader.status).toMatchObject({ generation: 2, rules: 2, reloads: 1, errors: 0, lastError: null });
  });

  test('an invalid file keeps the running policy; the error names file and line, is logged and shown in the status', () => {
    make();
    dir.write('sightline.yaml', 'policy:\n  rules:\n    - { id: broken, action: deny }\n');
    expect(reloader.reload('SIGHUP')).toMatchObject({ ok: false, generation: 1 });
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443))).toBe('first');
    const status = reloader.status;
    expect(status).toMatchObject({ generation: 1, errors: 1 });
    expect(status.lastError?.message).toMatch(new RegExp(`^${file}:3:\\d+: policy\\.rules\\.0\\.action: expected one of`));
    expect(logged.find((l) => l.level === 'error')?.fields.error).toBe(status.lastError?.message);
  });

  test('a later valid reload clears the error', () => {
    make();
    dir.write('sightline.yaml', 'policy: [');
    reloader.reload('SIGHUP');
    dir.write('sightline.yaml', RULES('third'));
    reloader.reload('SIGHUP');
    expect(reloader.status).toMatchObject({ generation: 2, errors: 1, lastError: null });
  });

  test('saving the config file reloads it by itself (watched, debounced)', async () => {
    make().start();
    dir.write('sightline.yaml', RULES('saved'));
    await waitUntil(() => reloader.status.generation === 2);
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443))).toBe('saved');
  });

  test('changing an admin category file reloads the policy', async () => {
    dir.write('banks.txt', 'one.test\n');
    file = dir.write('sightline.yaml', 'policy:\n  categories:\n    banks: banks.txt\n  rules:\n    - { id: banks, action: bypass, categories: [banks] }\n');
    make().start();
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443, 'two.test'))).toBe('no-match');
    dir.write('banks.txt', 'one.test\ntwo.test\n');
    await waitUntil(() => reloader.status.generation === 2);
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443, 'two.test'))).toBe('banks');
  });

  test('keys outside groups and policy are not applied, and the status says they need a restart', () => {
    make();
    dir.write('sightline.yaml', `mtu: 1380\ntls:\n  inspectPorts: [443, 8443]\n${RULES('x')}`);
    reloader.reload('SIGHUP');
    expect(reloader.status.restartNeeded).toEqual(['mtu', 'tls']);
    expect(logged.some((l) => l.level === 'warn')).toBe(true);
  });

  test('the defaults keep using the inspected ports the data path runs with', () => {
    file = dir.write('sightline.yaml', '');
    make();
    dir.write('sightline.yaml', 'tls:\n  inspectPorts: [8443]\n');
    reloader.reload('SIGHUP');
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 443))).toBe('inspect-tls');
    expect(ruleFor(holder.current, query('a', '192.0.2.1', 8443))).toBe('allow-rest');
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
