import { Command } from 'commander';
import { resolveConfigPath, resolveDataDir } from '../config';
import { defaultConfig, loadConfigFile } from '../config';

export function configCommand(): Command {
  const config = new Command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file and print the effective configuration as JSON')
    .action((_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ dataDir?: string; config?: string }>();
      const path = resolveConfigPath(g.config, resolveDataDir(g.dataDir));
      const effective = path ? loadConfigFile(path).config : defaultConfig();
      process.stderr.write(path ? `${path}: valid\n` : 'no config file: embedded defaults\n');
      process.stdout.write(JSON.stringify(effective, null, 2) + '\n');
    });
  return config;
}
