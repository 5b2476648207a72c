import { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusSnapshot } from '../concentrator';
import { resolveDataDir } from '../data_dir';

const STALE_MS = 5000;

export function statusCommand(): Command {
  return new Command('status')
    .description("show the running concentrator's peers, sessions and counters")
    .option('--json', 'print status.json as is')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const dataDir = resolveDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
      const file = join(dataDir, 'status.json');
      let text: string;
      let age: number;
      try {
        text = readFileSync(file, 'utf8');
        age = Date.now() - statSync(file).mtimeMs;
      } catch {
        throw new Error(`no status at ${file}: is the concentrator running with this data directory? (sightline start --data-dir ${dataDir})`);
      }
      const s = JSON.parse(text) as StatusSnapshot;
      if (age > STALE_MS) process.stderr.write(`warning: status is ${Math.round(age / 1000)} s old: the concentrator (pid ${s.pid}) may have stopped\n`);
      if (opts.json) {
        process.stdout.write(text);
        return;
      }
      const out = [`concentrator pid ${s.pid}, UDP ${s.listenPort}, public key ${s.publicKey}`, `tunnel ${s.tunnel.ipv4}, ${s.tunnel.ipv6}`, '', 'peers:'];
      for (const p of s.peers) {
        const hs = p.lastHandshakeSecondsAgo === null ? 'never' : `${p.lastHandshakeSecondsAgo}s ago`;
        out.push(`  ${p.name}\t${p.ipv4}\t${p.endpoint ?? '-'}\thandshake ${hs}\trx ${p.rxBytes} tx ${p.txBytes}`);
      }
      out.push('', 'counters:');
      for (const [group, counters] of Object.entries(s.counters)) {
        for (const [k, v] of Object.entries(counters)) if (v !== 0) out.push(`  ${group}.${k}\t${v}`);
      }
      process.stdout.write(out.join('\n') + '\n');
    });
}
