// The top self-time frames of V8 CPU profiles (`node --cpu-prof`), as text:
// what a benchmark's profile says before and after a change, without a
// browser. Self time of a frame = the sampling intervals whose innermost
// frame it was; frames with the same function, file and line are summed
// (a function is one node per call path in the profile).
// Usage: node dist/scripts/bench/profile_top.js [--top N] [--timeline] [--window FROM_S TO_S] FILE_OR_DIR...
// (a directory stands for every *.cpuprofile in it)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { repoRoot } from './tunnel_topology';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FrameTime {
  frame: string;
  selfMs: number;
  share: number;
}

/** Busy (not idle) ms in each second of the profile: where to point --window. */
export function busyTimeline(profile: CpuProfile): number[] {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const perSecond: number[] = [];
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += us;
    const s = Math.floor(at / 1e6);
    while (perSecond.length <= s) perSecond.push(0);
    if (!idle.has(profile.samples[i])) perSecond[s] += us / 1000;
  }
  return perSecond.map(Math.round);
}

/** Self time per frame, largest first, with its share of all sampled time in [fromS, toS) seconds after the start. */
export function topFrames(profile: CpuProfile, root = '', fromS = 0, toS = Infinity): { frames: FrameTime[]; totalMs: number } {
  const nameOf = new Map<number, string>();
  for (const n of profile.nodes) nameOf.set(n.id, frameName(n.callFrame, root));
  const self = new Map<string, number>();
  let total = 0;
  let at = 0;
  // timeDeltas[i] is the time since the previous sample; it belongs to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const us = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += us;
    if (at < fromS * 1e6 || at >= toS * 1e6) continue;
    const name = nameOf.get(profile.samples[i]) ?? '(unknown)';
    self.set(name, (self.get(name) ?? 0) + us);
    total += us;
  }
  const frames = [...self.entries()]
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: total > 0 ? us / total : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { frames, totalMs: total / 1000 };
}

function frameName(f: CallFrame, root: string): string {
  const fn = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return fn;
  const path = f.url.replace(/^file:\/\//, '');
  const shown = root !== '' && path.startsWith(root) ? relative(root, path) : path.startsWith('node:') ? path : basename(path);
  return `${fn} ${shown}:${f.lineNumber + 1}`;
}

function profilesIn(arg: string): string[] {
  if (!statSync(arg).isDirectory()) return [arg];
  return readdirSync(arg).filter((f) => f.endsWith('.cpuprofile')).sort().map((f) => join(arg, f));
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 10;
  const at = args.indexOf('--top');
  if (at >= 0) {
    top = Number(args[at + 1]);
    args.splice(at, 2);
  }
  // --window FROM TO: only the samples FROM..TO seconds after the profile began.
  let window: [number, number] = [0, Infinity];
  const w = args.indexOf('--window');
  if (w >= 0) {
    window = [Number(args[w + 1]), Number(args[w + 2])];
    args.splice(w, 3);
  }
  const timeline = args.indexOf('--timeline');
  if (timeline >= 0) args.splice(timeline, 1);
  if (args.length === 0 || !Number.isInteger(top) || top <= 0) {
    process.stderr.write('usage: profile_top [--top N] [--timeline] [--window FROM_S TO_S] FILE_OR_DIR... (V8 .cpuprofile files, or directories of them)\n');
    process.exit(1);
  }
  const root = repoRoot();
  for (const file of args.flatMap(profilesIn)) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    if (timeline >= 0) process.stdout.write(`${file}: busy ms per second: ${busyTimeline(profile).join(' ')}\n`);
    const { frames, totalMs } = topFrames(profile, root, window[0], window[1]);
    const idle = frames.find((f) => f.frame === '(idle)')?.selfMs ?? 0;
    process.stdout.write(`${file}: ${(totalMs / 1000).toFixed(1)} s sampled, ${((totalMs - idle) / 1000).toFixed(1)} s not idle\n`);
    for (const f of frames.slice(0, top)) {
      process.stdout.write(`  ${f.selfMs.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}\n`);
    }
  }
}

if (require.main === module) main();
