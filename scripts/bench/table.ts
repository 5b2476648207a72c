// Benchmark results as printed tables: one row per measurement, with a ratio
// against the anchor measured side by side in the same run.
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** Name of the anchor row this one is compared with, if any. */
  anchor?: string;
}

export function printTable(title: string, rows: BenchRow[]): void {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lines = rows.map((r) => {
    const a = r.anchor ? byName.get(r.anchor) : undefined;
    const ratio = a && a.value > 0 ? `${(r.value / a.value).toFixed(2)}x ${a.name}` : '';
    return [r.name, formatNumber(r.value), r.unit, ratio];
  });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['measurement', 'value', 'unit', 'ratio'], ...lines].map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  process.stdout.write(`\n${title}\n${fmt(['measurement', 'value', 'unit', 'ratio'])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const l of lines) process.stdout.write(fmt(l) + '\n');
}

function formatNumber(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(v >= 10 ? 1 : 3);
}
