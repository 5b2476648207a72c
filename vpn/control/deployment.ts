// One deployment = a data directory + its config + its state store. Both the
// running concentrator and the CLI commands start from here.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, loadConfigFile, type Config } from '../config';
import { ensurePrivateDir, resolveConfigPath, resolveDataDir, writeSecretFile } from '../config';
import { layoutPools, randomUlaPrefix, Store, type PoolLayout } from '.';
import { PrivateKey } from '../protocol';

export interface GlobalOptions {
  dataDir?: string;
  config?: string;
}

export interface Deployment {
  dataDir: string;
  configSource: string | null;
  config: Config;
  /** Effective pools: config, or the deployment's own random ULA prefix for IPv6. */
  ipv4Pool: string;
  ipv6Pool: string;
  layout: PoolLayout;
  store: Store;
  serverKey: PrivateKey;
}

export function openDeployment(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Deployment {
  const dataDir = resolveDataDir(opts.dataDir, env);
  const configPath = resolveConfigPath(opts.config, dataDir, env);
  const config = configPath ? loadConfigFile(configPath).config : defaultConfig();
  ensurePrivateDir(dataDir);
  const store = Store.open(dataDir);
  const ipv6Pool = config.tunnel.ipv6Pool ?? store.getOrSetMeta('ipv6_pool', randomUlaPrefix);
  const ipv4Pool = config.tunnel.ipv4Pool;
  return {
    dataDir,
    configSource: configPath,
    config,
    ipv4Pool,
    ipv6Pool,
    layout: layoutPools({ ipv4Pool, ipv6Pool }),
    store,
    serverKey: loadOrCreateServerKey(dataDir),
  };
}

export function serverKeyPath(dataDir: string): string {
  return join(dataDir, 'server.key');
}

function loadOrCreateServerKey(dataDir: string): PrivateKey {
  const file = serverKeyPath(dataDir);
  if (existsSync(file)) {
    checkPrivateMode(file);
    const text = readFileSync(file, 'utf8').trim();
    try {
      return PrivateKey.fromBase64(text);
    } catch {
      throw new Error(`${file}: not a WireGuard private key (expected 32 bytes in base64). Restore it from backup, or delete it to create a new one (every client config must then be re-issued).`);
    }
  }
  const key = PrivateKey.generate();
  writeSecretFile(file, key.toBase64() + '\n');
  return key;
}

/**
 * Like ssh with a private key: a key file that group or others may read (or
 * write) is refused, not silently used, since anyone who read it can
 * impersonate the concentrator to every client.
 */
export function checkPrivateMode(file: string): void {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const octal = mode.toString(8).padStart(4, '0');
  throw new Error(
    `${file}: permissions ${octal} are too open: this private key must not be accessible by group or others. ` +
    `Fix: chmod 600 ${file} (and check who could have read it; if in doubt, make a new key and re-issue every client config)`,
  );
}
