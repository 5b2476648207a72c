import { Command } from 'commander';
import { join } from 'node:path';
import { resolveDataDir } from '../config';
import type { StatusSnapshot } from '../concentrator';
import { readLiveStatus, STALE_MS } from './live_status';
import { describeEgress } from '../routed';

export function statusCommand(): Command {
  return new Command('status')
    .description("show the running concentrator's peers, sessions and counters")
    .option('--json', 'print status.json as is')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const dataDir = resolveDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
      const live = readLiveStatus(dataDir);
      if (live === null) throw new Error(`no status at ${join(dataDir, 'status.json')}: is the concentrator running with this data directory? (sightline start --data-dir ${dataDir})`);
      const { snapshot: s, text, ageMs: age } = live;
      if (age > STALE_MS) process.stderr.write(`warning: status is ${Math.round(age / 1000)} s old: the concentrator (pid ${s.pid}) may have stopped\n`);
      if (opts.json) {
        process.stdout.write(text);
        return;
      }
      const out = [`concentrator pid ${s.pid}, UDP ${s.listenPort}, public key ${s.publicKey}`, `tunnel ${s.tunnel.ipv4}, ${s.tunnel.ipv6}`, `egress ${describeEgress(s.egress)}`, '', 'peers:'];
      for (const p of s.peers) {
        const hs = p.lastHandshakeSecondsAgo === null ? 'never' : `${p.lastHandshakeSecondsAgo}s ago`;
        const state = p.state !== 'active' ? `\t${p.state} (refused handshakes: ${p.refusedHandshakes})` : '';
        out.push(`  ${p.name}\t${p.ipv4}\t${p.endpoint ?? '-'}\thandshake ${hs}\trx ${p.rxBytes} tx ${p.txBytes}${state}`);
      }
      // An older concentrator's status.json has no policy block.
      const pol = s.policy as StatusSnapshot['policy'] | undefined;
      if (pol) {
        out.push('', `policy: generation ${pol.generation}, ${pol.rules} rules, loaded ${pol.loadedAt} (${pol.reloads} reloads, ${pol.errors} failed)`);
        if (pol.lastError) out.push(`  last reload FAILED at ${pol.lastError.at}; the policy above still runs:`, ...pol.lastError.message.split('\n').map((l) => `    ${l}`));
        if (pol.restartNeeded.length > 0) out.push(`  changed keys that apply at the next start: ${pol.restartNeeded.join(', ')}`);
      }
      out.push('', 'counters:');
      for (const [group, counters] of Object.entries(s.counters)) {
        for (const [k, v] of Object.entries(counters)) if (v !== 0) out.push(`  ${group}.${k}\t${v}`);
      }
      process.stdout.write(out.join('\n') + '\n');
    });
}
