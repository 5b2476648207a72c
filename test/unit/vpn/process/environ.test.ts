// A secret handed over in the environment must not stay readable in
// /proc/PID/environ after it was read: unsetenv alone leaves its bytes there.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { environEntries, envStartFromStat } from '../../../../vpn/process';

const SOURCE = join(__dirname, '../../../../vpn/process/environ.ts');

/** Runs scrubEnvironment in a fresh process whose original environment holds the variable. */
function inChild(env: NodeJS.ProcessEnv, body: string): string {
  const js = ts.transpileModule(readFileSync(SOURCE, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const script = `const m = { exports: {} }; new Function('require', 'module', 'exports', ${JSON.stringify(js)})(require, m, m.exports); const env = m.exports; ${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe('wiping a secret from the process environment', () => {
  test('environEntries finds every NAME= entry and no variable whose name only starts alike', () => {
    const block = Buffer.from('A=1\0SECRET=x\0SECRET_X=2\0SECRET=\0');
    expect(environEntries(block, 'SECRET')).toEqual([[4, 12], [24, 31]]);
    expect(environEntries(block, 'NONE')).toEqual([]);
  });

  test('envStartFromStat reads field 50 even when the command name holds spaces and parentheses', () => {
    const rest = Array.from({ length: 50 }, (_, i) => String(i + 3));
    expect(envStartFromStat(`1234 (a (b) c) ${rest.join(' ')}`)).toBe(50);
    expect(envStartFromStat('1234 (short) R 1 2')).toBeNull();
  });

  test('after unset and scrub, /proc/self/environ no longer shows the value, and other variables stay intact', () => {
    const out = inChild({ SIGHTLINE_CA_PASSPHRASE: 'hunter2-secret', KEEP: 'kept-value', PATH: process.env.PATH }, `
      delete process.env.SIGHTLINE_CA_PASSPHRASE;
      const before = require('fs').readFileSync('/proc/self/environ', 'latin1').includes('hunter2-secret');
      const result = env.scrubEnvironment('SIGHTLINE_CA_PASSPHRASE');
      const after = require('fs').readFileSync('/proc/self/environ', 'latin1');
      process.stdout.write(JSON.stringify({ before, result, after: after.includes('hunter2-secret'), keep: after.includes('KEEP=kept-value'), live: process.env.KEEP }));`);
    expect(JSON.parse(out)).toEqual({ before: true, result: 'scrubbed', after: false, keep: true, live: 'kept-value' });
  });

  test('a variable that is not in the original environment is reported absent and nothing is written', () => {
    const out = inChild({ PATH: process.env.PATH }, `process.stdout.write(env.scrubEnvironment('SIGHTLINE_CA_PASSPHRASE'));`);
    expect(out).toBe('absent');
  });
});
