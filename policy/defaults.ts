// What applies when the admin writes no rules: the privacy categories are
// passed through undecrypted, the inspected ports are inspected, the rest is
// forwarded. The lists themselves are text files in policy/categories/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RuleConfig } from './schema';

/** Shipped categories, by name: file names in policy/categories/ without ".txt". */
export const SHIPPED_CATEGORY_NAMES = ['privacy-finance', 'privacy-health', 'pinned-apps'] as const;

/** The shipped list of hosts whose apps pin certificates (the TLS engine bypasses them, reason `pinned-listed`). */
export const PINNED_APPS_CATEGORY = 'pinned-apps';

export function defaultRules(inspectPorts: number[]): RuleConfig[] {
  return [
    { id: 'privacy', action: 'bypass', categories: ['privacy-finance', 'privacy-health'] },
    { id: 'inspect-tls', action: 'inspect', protocol: 'tcp', ports: [...inspectPorts] },
    { id: 'allow-rest', action: 'allow' },
  ];
}

/**
 * The folder of the shipped lists: next to this file when run from the
 * sources (ts-jest), at the package root's policy/categories when run from
 * dist/ (tsc copies no .txt files).
 */
export function shippedCategoriesDir(): string {
  const beside = join(__dirname, 'categories');
  if (existsSync(join(beside, `${SHIPPED_CATEGORY_NAMES[0]}.txt`))) return beside;
  return join(__dirname, '..', '..', 'policy', 'categories');
}

export function shippedCategoryFiles(): Record<string, string> {
  const dir = shippedCategoriesDir();
  return Object.fromEntries(SHIPPED_CATEGORY_NAMES.map((n) => [n, join(dir, `${n}.txt`)]));
}
