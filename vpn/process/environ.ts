// A secret passed in an environment variable is wiped from the process's
// original environment block, not only unset. unsetenv (what `delete
// process.env.X` calls) drops the pointer from libc's `environ` array, but the
// "NAME=value" bytes the kernel copied at exec stay in place, and
// /proc/PID/environ (readable by the same user and by root) shows them for the
// life of the process. Overwriting them through /proc/self/mem leaves NUL bytes
// there instead. Best effort: where /proc is not mounted or not writable the
// variable is still unset, which keeps it from child processes.
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/** Byte ranges [start, end) of every "NAME=..." entry of a NUL-separated environment block. */
export function environEntries(block: Buffer, name: string): Array<[number, number]> {
  const prefix = Buffer.from(`${name}=`);
  const out: Array<[number, number]> = [];
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf(0, start);
    if (end < 0) end = block.length;
    if (end - start >= prefix.length && block.subarray(start, start + prefix.length).equals(prefix)) out.push([start, end]);
    start = end + 1;
  }
  return out;
}

/** env_start, the address /proc/self/environ starts at: field 50 of /proc/self/stat (proc(5), Linux 3.5+). */
export function envStartFromStat(stat: string): number | null {
  // Field 2 (comm) may hold spaces and parentheses: count fields after its closing one, which ends field 2.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  const v = Number(fields[50 - 3]);
  return Number.isSafeInteger(v) && v > 0 ? v : null;
}

export type ScrubResult = 'scrubbed' | 'absent' | 'failed';

/** Overwrites every NAME=... entry of this process's original environment with NULs. */
export function scrubEnvironment(name: string): ScrubResult {
  let fd: number | null = null;
  try {
    const block = readFileSync('/proc/self/environ');
    const entries = environEntries(block, name);
    if (entries.length === 0) return 'absent';
    const envStart = envStartFromStat(readFileSync('/proc/self/stat', 'latin1'));
    if (envStart === null) return 'failed';
    fd = openSync('/proc/self/mem', 'r+');
    for (const [start, end] of entries) {
      // Write only over the bytes just read there: never over memory that is not this entry.
      const expected = block.subarray(start, end);
      const seen = Buffer.alloc(expected.length);
      if (readSync(fd, seen, 0, seen.length, envStart + start) !== seen.length || !seen.equals(expected)) return 'failed';
      writeSync(fd, Buffer.alloc(expected.length), 0, expected.length, envStart + start);
    }
    return 'scrubbed';
  } catch {
    return 'failed';
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
