// Policy decisions per flow with 10,000 rules and 100,000 category domains
// (targets: median under 2 us, p99 under 10 us), compile time, and the
// memory the compiled policy and its decision caches hold. Each decision is
// timed on its own; the timer's own cost is shown as a row. Memory is the
// heap plus array buffers after forced full GCs, before and after, with the
// measured object still referenced; a non-positive difference is an error,
// never a printed number.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compilePolicy, type FlowQuery, type Policy } from '../../policy';
import { makeWorkload } from './policy_workload';
import type { BenchRow } from './table';

const SHAPE = { rules: 10_000, categories: 50, domainsPerCategory: 2_000, users: 2_000, groups: 100, v4UniverseBits: 8, queries: 100_000, seed: 42 };
const COMPILES = 3;
const ROUNDS = 5;

function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Heap used plus array buffers (typed arrays live there), after full GCs.
 * Array buffers are freed after the GC that finds them dead, off the main
 * thread: wait between rounds until two readings agree.
 */
async function settledBytes(gc: () => void): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    const m = process.memoryUsage();
    const now = m.heapUsed + m.arrayBuffers;
    if (Math.abs(now - last) < 16 * 1024) return now;
    last = now;
  }
  return last;
}

function retainedMb(before: number, after: number, what: string): number {
  const d = after - before;
  if (d <= 0) throw new Error(`memory measurement for ${what} came out at ${d} bytes: something else freed memory meanwhile; rerun`);
  return d / (1 << 20);
}

function timeEach(queries: FlowQuery[], op: (q: FlowQuery) => unknown): Float64Array {
  const out = new Float64Array(queries.length);
  for (let i = 0; i < queries.length; i++) {
    const t0 = process.hrtime.bigint();
    op(queries[i]);
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out.sort();
}

const at = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];

/** Median, over rounds, of each round's median and p99. */
function rounds(n: number, run: () => Float64Array): { median: number; p99: number } {
  const medians: number[] = [];
  const p99s: number[] = [];
  for (let i = 0; i < n; i++) {
    const sorted = run();
    medians.push(at(sorted, 0.5));
    p99s.push(at(sorted, 0.99));
  }
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { median: mid(medians), p99: mid(p99s) };
}

export async function benchPolicy(): Promise<BenchRow[]> {
  const gc = exposeGc();
  const w = makeWorkload(SHAPE);
  const opts = { read: (f: string) => w.files.get(f) ?? '', shipped: {} };
  const domains = [...w.files.values()].reduce((n, t) => n + t.split('\n').length - 2, 0);
  process.stderr.write(`policy bench: ${SHAPE.rules} rules, ${domains} category domains, ${w.queries.length} flows\n`);

  // Memory first, before the timed compiles leave garbage behind.
  const before = await settledBytes(gc);
  const policy: Policy = compilePolicy(w.source, opts);
  const compiled = await settledBytes(gc);
  for (let i = 0; i < 2; i++) for (const q of w.queries) policy.decide(q);
  const withCaches = await settledBytes(gc);

  // Rounds, each summarised by its median and p99; the median round is
  // reported, so one burst of other work on the machine does not decide.
  const warm = rounds(ROUNDS, () => timeEach(w.queries, (q) => policy.decide(q)));
  const early = rounds(ROUNDS, () => timeEach(w.queries, (q) => policy.decideBeforeHost(q)));
  const timer = rounds(ROUNDS, () => timeEach(w.queries, () => undefined));
  // Uses the policy after the last measurement, so it is alive through all of them.
  const decided = new Set(w.queries.slice(0, 1000).map((q) => policy.decide(q).rule)).size;
  process.stderr.write(`policy bench: ${decided} distinct rules decide the first 1000 flows\n`);

  // Each timed compile is followed by its first pass: every cache cold.
  const compileMs: number[] = [];
  const cold = rounds(COMPILES, () => {
    const t0 = process.hrtime.bigint();
    const fresh = compilePolicy(w.source, opts);
    compileMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    return timeEach(w.queries, (q) => fresh.decide(q));
  });
  compileMs.sort((a, b) => a - b);

  const TARGET_MEDIAN = 'target: median decision';
  const TARGET_P99 = 'target: p99 decision';
  return [
    { name: TARGET_MEDIAN, value: 2, unit: 'us' },
    { name: TARGET_P99, value: 10, unit: 'us' },
    { name: `decision, warm caches, median (median of ${ROUNDS} rounds)`, value: warm.median, unit: 'us', anchor: TARGET_MEDIAN },
    { name: 'decision, warm caches, p99', value: warm.p99, unit: 'us', anchor: TARGET_P99 },
    { name: `decision, cold caches (first flows after a reload), median of ${COMPILES} fresh policies`, value: cold.median, unit: 'us', anchor: TARGET_MEDIAN },
    { name: 'decision, cold caches, p99', value: cold.p99, unit: 'us', anchor: TARGET_P99 },
    { name: 'decision before the name is read (SYN), median', value: early.median, unit: 'us', anchor: TARGET_MEDIAN },
    { name: 'decision before the name is read, p99', value: early.p99, unit: 'us', anchor: TARGET_P99 },
    { name: 'timer overhead included above, median', value: timer.median, unit: 'us' },
    { name: `compile ${SHAPE.rules} rules + ${domains} domains, median of ${COMPILES}`, value: compileMs[Math.floor(COMPILES / 2)], unit: 'ms' },
    { name: 'memory: compiled policy (heap + array buffers after GC)', value: retainedMb(before, compiled, 'the compiled policy'), unit: 'MB' },
    { name: `memory: compiled policy + decision caches after ${w.queries.length * 2} decisions`, value: retainedMb(before, withCaches, 'the policy with caches'), unit: 'MB' },
  ];
}
