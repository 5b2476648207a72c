// The admin config (sightline.yaml, validated by zod with file:line errors)
// and where a deployment's files live (the data directory, 0700).
export { configSchema, parseHostPort, type Config } from './schema';
export { ConfigError, defaultConfig, loadConfigFile, parseConfigText, type LoadedConfig } from './load';
export { DEFAULT_DATA_DIR, ensurePrivateDir, resolveConfigPath, resolveDataDir, writeSecretFile } from './data_dir';
