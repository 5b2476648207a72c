// `sightline` command line. Every command works on one deployment: the data
// directory (--data-dir, SIGHTLINE_DATA_DIR, ./sightline-data) and its config
// (--config, SIGHTLINE_CONFIG, DATA_DIR/sightline.yaml, embedded defaults).
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config';
import { peerCommand } from './peer';
import { userCommand } from './user';
import { deviceCommand } from './device';
import { startCommand } from './start';
import { configCommand } from './config_cmd';
import { statusCommand } from './status';
import { caCommand } from './ca';
import { pinnedCommand } from './pinned';
import { policyCommand } from './policy';
import { logsCommand } from './logs';
import { CaError } from '../../mitm';

export function buildProgram(): Command {
  const program = new Command('sightline')
    .description('Corporate VPN concentrator: WireGuard, userspace TCP/IP, TLS inspection')
    .option('--data-dir <dir>', 'data directory (env SIGHTLINE_DATA_DIR, default ./sightline-data)')
    .option('--config <file>', 'config file (env SIGHTLINE_CONFIG, default DATA_DIR/sightline.yaml if present)')
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(startCommand());
  program.addCommand(userCommand());
  program.addCommand(deviceCommand());
  program.addCommand(peerCommand());
  program.addCommand(statusCommand());
  program.addCommand(configCommand());
  program.addCommand(caCommand());
  program.addCommand(pinnedCommand());
  program.addCommand(policyCommand());
  program.addCommand(logsCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // Everything sightline writes (state, WAL files, keys, logs) is private to its user.
  process.umask(0o077);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (and help) for usage errors.
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`sightline: invalid configuration:\n${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof CaError) {
      process.stderr.write(`sightline: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}
