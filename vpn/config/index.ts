export { configSchema, parseHostPort, type Config } from './schema';
export { ConfigError, defaultConfig, loadConfigFile, parseConfigText, type LoadedConfig } from './load';
