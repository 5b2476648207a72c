// Secrets handed to `sightline ca ...` and `start` stay out of places other
// processes can read: the environment of children and /proc/PID/environ.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caPassphrase, secretFromFile } from '../../../../vpn/cli/ca';

describe('CA passphrase and PKCS#12 password sources', () => {
  test('SIGHTLINE_CA_PASSPHRASE is deleted from the environment once read', () => {
    const env: NodeJS.ProcessEnv = { SIGHTLINE_CA_PASSPHRASE: 'hunter2', OTHER: 'kept' };
    expect(caPassphrase(undefined, env)).toBe('hunter2');
    expect('SIGHTLINE_CA_PASSPHRASE' in env).toBe(false);
    expect(env.OTHER).toBe('kept');
    expect(caPassphrase(undefined, env)).toBeUndefined();
  });

  test('the real process environment loses the variable too (children of the concentrator never inherit it)', () => {
    process.env.SIGHTLINE_CA_PASSPHRASE = 'from-env';
    expect(caPassphrase(undefined)).toBe('from-env');
    expect(process.env.SIGHTLINE_CA_PASSPHRASE).toBeUndefined();
  });

  test('--passphrase-file wins over the variable, which is still deleted', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ca-secret-')), 'pass');
    writeFileSync(f, 'from-file\nsecond line\n');
    const env: NodeJS.ProcessEnv = { SIGHTLINE_CA_PASSPHRASE: 'from-env' };
    expect(caPassphrase(f, env)).toBe('from-file');
    expect('SIGHTLINE_CA_PASSPHRASE' in env).toBe(false);
  });

  test('a secret file gives its first line without the line ending (CRLF too)', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ca-secret-')), 'pw');
    writeFileSync(f, 'p12 pass\r\nignored\n');
    expect(secretFromFile(f, '--p12-password-file')).toBe('p12 pass');
  });

  test('an unreadable secret file is a clear error naming the option and the file', () => {
    expect(() => secretFromFile('/nonexistent/pw', '--p12-password-file')).toThrow('cannot read --p12-password-file /nonexistent/pw: ENOENT');
  });
});
