// The one config loader: YAML file (or embedded defaults) → validated Config.
// Errors name the file, line, key path, what was expected and what was found.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema';
import { checkCategoryFiles } from '../../policy';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file the config came from, or null for embedded defaults. */
  source: string | null;
}

export function defaultConfig(): Config {
  return configSchema.parse({});
}

export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config file: ${(err as Error).message}`);
  }
  return { config: parseConfigText(text, file), source: file };
}

export function parseConfigText(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lineCounter.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw);
  if (result.success) return withCategoryFiles(result.data, doc, lineCounter, file);

  const lines = result.error.issues.map((issue) => {
    const path = issue.path.map(String);
    const where = locate(doc, lineCounter, path);
    const key = path.length > 0 ? path.join('.') : '(top level)';
    return `${file}${where}: ${key}: ${describe(issue, raw, path)}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** Category files belong to the config: paths resolved against its folder, every file read and checked. */
function withCategoryFiles(config: Config, doc: ReturnType<typeof parseDocument>, lc: LineCounter, file: string): Config {
  const { resolved, problems } = checkCategoryFiles(config.policy.categories, dirname(file));
  if (problems.length > 0) {
    throw new ConfigError(problems.map((p) => {
      const path = ['policy', 'categories', p.name];
      return `${file}${locate(doc, lc, path)}: ${path.join('.')}: ${p.message}`;
    }).join('\n'));
  }
  return { ...config, policy: { ...config.policy, categories: resolved } };
}

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: string[]): string {
  // Walk up until a node exists (a missing key is reported at its parent).
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    if (range) {
      const pos = lc.linePos(range[0]);
      return `:${pos.line}:${pos.col}`;
    }
  }
  return '';
}

function valueAt(raw: unknown, path: string[]): unknown {
  let v = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function describe(issue: z.core.$ZodIssue, raw: unknown, path: string[]): string {
  const found = valueAt(raw, path);
  const foundText = found === undefined ? 'nothing' : JSON.stringify(found);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (check the spelling; keys are camelCase)`;
    case 'invalid_type':
      return `expected ${issue.expected}, found ${foundText}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, found ${foundText}`;
    case 'too_small':
    case 'too_big':
      return `${issue.message.replace(/^Too (small|big): /, '')}, found ${foundText}`;
    default: {
      // A check on a record's keys says which key it found (the value at the path is the key's value).
      const own = issue.code === 'custom' ? (issue.params as { found?: unknown } | undefined)?.found : undefined;
      return `expected ${issue.message}, found ${own === undefined ? foundText : JSON.stringify(own)}`;
    }
  }
}
