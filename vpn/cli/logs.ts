// `sightline logs USER`: a user's tunnel log, oldest first, across rotated
// files, filtered by time, type and text; --follow keeps printing new records.
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findUser } from '../control';
import { resolveDataDir } from '../config';
import { openDeployment, type GlobalOptions } from '../control';
import { followUserLog, formatRecord, LogQueryError, parseTime, parseTypes, readUserLog, userLogFiles, type LogLine, type LogQuery } from '../logs';

interface LogsOptions {
  since?: string;
  until?: string;
  type?: string;
  grep?: string;
  follow?: boolean;
  json?: boolean;
}

export function logsCommand(): Command {
  return new Command('logs')
    .description("print a user's tunnel log (all devices), oldest first, across rotated files")
    .argument('<user>', 'the user')
    .option('--since <time>', 'from this time: ISO 8601 (2026-12-01T09:00:00Z) or ago (15m, 2h, 1d)')
    .option('--until <time>', 'up to this time (same forms)')
    .option('--type <type>', 'only these record types, comma-separated (flow, flow_end, http, session, dns, ...)')
    .option('--grep <text>', 'only records whose JSON contains this text (case-insensitive)')
    .option('--follow', 'keep printing new records as they are written (Ctrl-C to stop)')
    .option('--json', 'print records as written (one JSON object per line)')
    .action((user: string, opts: LogsOptions, cmd: Command) => logsAction(cmd, user, opts));
}

async function logsAction(cmd: Command, user: string, opts: LogsOptions): Promise<void> {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const q = query(opts);
  const dataDir = resolveDataDir(g.dataDir);
  if (!existsSync(dataDir)) throw new LogQueryError(`no data directory at ${dataDir}: pass --data-dir (or SIGHTLINE_DATA_DIR) of the deployment`);
  const logsDir = join(dataDir, 'logs');
  if (userLogFiles(logsDir, user).length === 0 && !opts.follow) {
    if (!userExists(g, user)) throw new LogQueryError(`no user "${user}" and no logs under that name in ${logsDir} (see: sightline user list)`);
    process.stderr.write(`no records for "${user}" yet\n`);
    return;
  }
  const print = (l: LogLine): void => void process.stdout.write(`${opts.json ? l.line : formatRecord(l.record)}\n`);
  const end = await readUserLog(logsDir, user, q, print);
  if (!opts.follow) return;
  const stop = new AbortController();
  const abort = (): void => stop.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    await followUserLog(logsDir, user, end, q, print, stop.signal);
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
}

function query(opts: LogsOptions): LogQuery {
  const q: LogQuery = {};
  if (opts.since !== undefined) q.since = parseTime(opts.since, '--since');
  if (opts.until !== undefined) q.until = parseTime(opts.until, '--until');
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) throw new LogQueryError(`--since (${q.since}) is after --until (${q.until})`);
  if (opts.follow && q.until !== undefined) throw new LogQueryError('--follow prints records as they come: it cannot be combined with --until');
  if (opts.type !== undefined) q.types = parseTypes(opts.type);
  if (opts.grep !== undefined) {
    if (opts.grep.length === 0) throw new LogQueryError('--grep needs some text');
    q.grep = opts.grep;
  }
  return q;
}

function userExists(g: GlobalOptions, user: string): boolean {
  const d = openDeployment(g);
  try {
    return findUser(d.store, user) !== null;
  } finally {
    d.store.close();
  }
}
