// `sightline policy show | explain`: the effective rules, and why a given
// flow gets its verdict, computed by the same Policy.decide the data path
// calls. Exit 2 for an invalid query or configuration.
import { Command, CommanderError } from 'commander';
import { IpAddress } from '../../netstack/wire';
import { compilePolicy, explain, formatExplanation, formatPolicy, normalizeDomain, PolicyError, type FlowProtocol, type FlowQuery, type Policy } from '../../policy';
import { ConfigError, defaultConfig, loadConfigFile, parseHostPort } from '../config';
import { resolveConfigPath, resolveDataDir } from '../config';

interface Globals {
  dataDir?: string;
  config?: string;
}

function loadPolicy(cmd: Command): { policy: Policy; source: string | null } {
  const g = cmd.optsWithGlobals<Globals>();
  const source = resolveConfigPath(g.config, resolveDataDir(g.dataDir));
  const config = source ? loadConfigFile(source).config : defaultConfig();
  try {
    return { policy: compilePolicy(config), source };
  } catch (err) {
    // A category file that changed since validation, or a shipped list that is missing: still the configuration.
    if (err instanceof PolicyError) throw new ConfigError(err.message);
    throw err;
  }
}

class QueryError extends Error {}

const PROTOCOLS: readonly FlowProtocol[] = ['tcp', 'udp', 'icmp'];

export interface ExplainOptions {
  user: string;
  dst: string;
  sni?: string;
  protocol: string;
}

/** The flow an admin asks about, validated like the data path would see it. */
export function parseExplainQuery(o: ExplainOptions): FlowQuery {
  const protocol = o.protocol.toLowerCase() as FlowProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new QueryError(`invalid --protocol ${JSON.stringify(o.protocol)}: expected tcp, udp or icmp`);
  if (o.user.trim() === '') throw new QueryError('invalid --user "": expected a user name');
  let addr: IpAddress | null;
  let port = 0;
  const hp = parseHostPort(o.dst, true);
  if (hp !== null) {
    addr = IpAddress.tryParse(hp.host);
    port = hp.port;
  } else {
    // ICMP has no port: a bare address is enough (IPv6 with or without brackets).
    addr = protocol === 'icmp' ? IpAddress.tryParse(o.dst.replace(/^\[(.*)\]$/, '$1')) : null;
  }
  if (addr === null) {
    throw new QueryError(`invalid --dst ${JSON.stringify(o.dst)}: expected ADDR:PORT with an IP address and a port 1-65535, e.g. 10.20.0.5:443 or [fd00::5]:443${protocol === 'icmp' ? ' (or a bare address for icmp)' : ''}`);
  }
  let host: string | null = null;
  if (o.sni !== undefined) {
    host = normalizeDomain(o.sni);
    if (host === null) throw new QueryError(`invalid --sni ${JSON.stringify(o.sni)}: expected a host name like www.example.com`);
  }
  return { user: o.user, protocol, dst: addr.bytes, dstPort: protocol === 'icmp' ? 0 : port, host };
}

/**
 * A query commander refuses (no --user or --dst, an unknown option, a stray
 * argument) is an invalid query like a bad --dst: exit 2, not commander's 1.
 * Help and version keep their own status.
 */
function invalidQueryExits2(err: CommanderError): never {
  if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') throw err;
  throw new CommanderError(2, err.code, err.message);
}

export function policyCommand(): Command {
  const policy = new Command('policy').description('the inspection and access policy: effective rules, and why a flow gets its verdict');

  policy
    .command('show')
    .description('print the effective rules in order (built-in defaults marked), categories with domain counts, and groups')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const { policy: p, source } = loadPolicy(cmd);
      if (!opts.json) {
        process.stdout.write(formatPolicy(p, source));
        return;
      }
      const rules = p.rules.map((r) => ({ ...r.verdict, ...r.source, id: r.verdict.rule }));
      process.stdout.write(JSON.stringify({ config: source, usesDefaults: p.usesDefaults, rules, categories: p.categories, groups: p.groups }, null, 2) + '\n');
    });

  policy
    .command('explain')
    .description('print the action, the deciding rule and the fields that matched, for one flow')
    .requiredOption('--user <user>', 'the user (peer name) the flow belongs to')
    .requiredOption('--dst <addr:port>', 'destination, e.g. 10.20.0.5:443 or [fd00::5]:443')
    .option('--sni <name>', 'the SNI or HTTP Host of the flow (without it, only rules without hosts/categories can match)')
    .option('--protocol <protocol>', 'tcp, udp or icmp', 'tcp')
    .option('--json', 'JSON output')
    .exitOverride(invalidQueryExits2)
    .action((opts: ExplainOptions & { json?: boolean }, cmd: Command) => {
      let q: FlowQuery;
      try {
        q = parseExplainQuery(opts);
      } catch (err) {
        if (!(err instanceof QueryError)) throw err;
        process.stderr.write(`sightline: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      const { policy: p } = loadPolicy(cmd);
      const e = explain(p, q);
      process.stdout.write(opts.json ? JSON.stringify(e, null, 2) + '\n' : formatExplanation(e, p.rules[e.index]));
    });

  return policy;
}
