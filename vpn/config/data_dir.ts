// The data directory holds every piece of state and every secret of a
// deployment; it is created 0700 and secrets in it are written 0600.
import { chmodSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const DEFAULT_DATA_DIR = './sightline-data';

export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.SIGHTLINE_DATA_DIR ?? DEFAULT_DATA_DIR);
}

/** The config file: --config, then SIGHTLINE_CONFIG, then DATA_DIR/sightline.yaml if present. */
export function resolveConfigPath(flag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = flag ?? env.SIGHTLINE_CONFIG;
  if (explicit) return resolve(explicit);
  const inDir = join(dataDir, 'sightline.yaml');
  return existsSync(inDir) ? inDir : null;
}

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for existing folders.
  if ((statSync(dir).mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** Atomically write a secret: never visible with wider permissions, never half-written. */
export function writeSecretFile(file: string, data: string | Buffer): void {
  ensurePrivateDir(dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
