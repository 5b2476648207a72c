import { Command } from 'commander';
import { join } from 'node:path';
import { PinningTracker } from '../../mitm';
import { resolveDataDir } from '../data_dir';

export function pinnedCommand(): Command {
  const pinned = new Command('pinned').description('hosts learned as certificate-pinned per user (bypassed from inspection for a while)');
  pinned
    .command('list')
    .description('list pinned (user, host) pairs as the running concentrator last saved them')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const file = join(resolveDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir), 'pinned.json');
      const tracker = new PinningTracker();
      const now = Date.now();
      tracker.load(file, now);
      const list = tracker.list(now);
      if (opts.json) {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        return;
      }
      if (list.length === 0) process.stdout.write('no pinned hosts\n');
      for (const p of list) process.stdout.write(`${p.user}\t${p.host}\tfailures ${p.failures}\tpinned ${new Date(p.pinnedAt).toISOString()}\tuntil ${new Date(p.until).toISOString()}\n`);
    });
  return pinned;
}
