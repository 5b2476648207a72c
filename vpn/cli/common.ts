// What every control-plane command does around its work: open the deployment
// (data directory, config, store) and close the store however it ends.
import type { Command } from 'commander';
import { openDeployment, type Deployment, type GlobalOptions } from '../control';

export function withDeployment<T>(cmd: Command, fn: (d: Deployment) => T): T {
  const d = openDeployment(cmd.optsWithGlobals<GlobalOptions>());
  try {
    return fn(d);
  } finally {
    d.store.close();
  }
}

export async function withDeploymentAsync<T>(cmd: Command, fn: (d: Deployment) => Promise<T>): Promise<T> {
  const d = openDeployment(cmd.optsWithGlobals<GlobalOptions>());
  try {
    return await fn(d);
  } finally {
    d.store.close();
  }
}

/** One line per row, columns padded to the widest cell (no trailing spaces). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
