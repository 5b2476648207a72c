// Category files: one domain per line, '#' starts a comment (at the start of
// a line or after a space), blank lines ignored. A domain covers itself and
// every name below it. Errors name the file and line, like config errors.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { normalizeDomain } from './domains';

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

export type ReadText = (file: string) => string;

export const readText: ReadText = (file) => readFileSync(file, 'utf8');

/** The canonical domains of a category file's text; throws PolicyError at the first bad line. */
export function parseCategoryText(text: string, file: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    const hash = line.indexOf('#');
    if (hash === 0 || (hash > 0 && /\s/.test(line[hash - 1]))) line = line.slice(0, hash);
    line = line.trim();
    if (line.length === 0) continue;
    const domain = normalizeDomain(line);
    if (domain === null) {
      const hint = line.startsWith('*.') ? ' (write example.com: a domain already covers the names below it)' : '';
      throw new PolicyError(`${file}:${i + 1}: expected a domain name like example.com${hint}, found ${JSON.stringify(line)}`);
    }
    out.push(domain);
  }
  return out;
}

export function readCategoryFile(file: string, read: ReadText = readText): string[] {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new PolicyError(`cannot read category file ${file}: ${(err as Error).message}`);
  }
  return parseCategoryText(text, file);
}

/** Relative category paths are relative to the config file's folder. */
export function resolveCategoryPath(file: string, configDir: string): string {
  return isAbsolute(file) ? file : resolve(configDir, file);
}

/**
 * For the config loader: resolves every admin category path and reads and
 * parses each file once, so an unreadable or malformed list is a config
 * error located at its key. Returns the resolved paths and the problems.
 */
export function checkCategoryFiles(
  categories: Record<string, string>,
  configDir: string,
  read: ReadText = readText,
): { resolved: Record<string, string>; problems: { name: string; message: string }[] } {
  const resolved: Record<string, string> = {};
  const problems: { name: string; message: string }[] = [];
  for (const [name, file] of Object.entries(categories)) {
    resolved[name] = resolveCategoryPath(file, configDir);
    try {
      readCategoryFile(resolved[name], read);
    } catch (err) {
      problems.push({ name, message: (err as Error).message });
    }
  }
  return { resolved, problems };
}
