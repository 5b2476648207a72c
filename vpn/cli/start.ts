import { Command } from 'commander';
import { Concentrator } from '../concentrator';
import { openDeployment, type GlobalOptions } from '../control';
import { createLogger } from '../process';
import { ProcessGuard } from '../process';
import { caPassphrase } from './ca';
import { describeEgress } from '../routed';

export function startCommand(): Command {
  return new Command('start')
    .description('run the concentrator (creates the data directory and server key on first start)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const d = openDeployment(g);
      const log = createLogger(d.config.log.level);
      // The last line of defence (README, troubleshooting): log, count, exit non-zero for a supervisor.
      const guard = new ProcessGuard({ log });
      guard.install();
      let c: Concentrator;
      try {
        c = await Concentrator.start(d, log, { caPassphrase: caPassphrase(undefined), guard });
      } catch (err) {
        d.store.close();
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE') throw new Error(`UDP port ${d.config.listenPort} is already in use: stop the other process or set listenPort in the config`);
        if (e.code === 'EACCES') throw new Error(`not allowed to listen on UDP port ${d.config.listenPort}: choose a port above 1023 or run with the needed privilege`);
        throw err;
      }
      const status = c.status();
      const dirFlag = g.dataDir ? ` --data-dir ${g.dataDir}` : '';
      process.stdout.write(
        [
          `Sightline concentrator listening on UDP port ${c.listenPort}`,
          `  data directory:   ${d.dataDir}`,
          `  config:           ${d.configSource ?? 'embedded defaults'}`,
          `  server public key ${status.publicKey}`,
          `  tunnel addresses: ${d.layout.serverV4}/${d.layout.v4Prefix}, ${d.layout.serverV6}/${d.layout.v6Prefix}`,
          `  DNS upstream:     ${status.dnsUpstream.join(', ') || 'none (set dns.upstream)'}`,
          `  peers:            ${status.peers.length}`,
          `  inspection CA:    SHA-256 ${c.inspection.ca.ca.fingerprint}${c.inspection.ca.created ? ' (created now)' : ''} — export it with: npx sightline ca export${dirFlag}`,
          `  inspected ports:  TCP ${d.config.tls.inspectPorts.join(', ')} (upstream errors: ${d.config.tls.onUpstreamError}, revocation: ${d.config.tls.revocation})`,
          `  egress:           ${describeEgress(status.egress)}`,
          `  policy:           ${status.policy.rules} rules${d.config.policy.rules === undefined ? ' (built-in defaults)' : ''}; reloaded on SIGHUP or when the config changes (sightline policy show)`,
          '',
          "Add an employee's device (prints a WireGuard client config, --qr for phones; picked up without restart):",
          `  npx sightline device add alice${d.config.endpoint ? '' : ` --endpoint HOST:${c.listenPort}`}${dirFlag} > alice.conf`,
          '',
        ].join('\n'),
      );
      log.info({ port: c.listenPort, peers: status.peers.length }, 'concentrator started');
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info({ signal: sig }, 'stopping');
          c.stop().then(resolve, (err: unknown) => {
            log.error({ err: (err as Error).message }, 'stop failed');
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
        // Hot reload of the policy (groups, policy.*); new flows use it, running ones keep theirs.
        process.on('SIGHUP', () => c.reloadPolicy('SIGHUP'));
      });
    });
}
