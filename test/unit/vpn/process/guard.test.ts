// The process-level last line of defence (vpn/process/guard.ts): whatever
// reaches it is logged and counted, the concentrator's last words (status,
// logs) get a bounded moment, and the process exits with status 70 for its
// supervisor to restart it. It never carries on silently.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import { EXIT_FATAL, ProcessGuard } from '../../../../vpn/process';

function harness(lastWordsTimeoutMs = 1000) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (resolveExit = r));
  const exit = jest.fn((code: number) => resolveExit(code));
  const guard = new ProcessGuard({ log, exit, lastWordsTimeoutMs });
  const proc = new EventEmitter();
  guard.install(proc);
  return { guard, proc, lines, exit, exited };
}

const savedExitCode = process.exitCode;
afterEach(() => {
  process.exitCode = savedExitCode;
});

test('an uncaught exception is logged at fatal level, counted, and the process exits with status 70 after its last words', async () => {
  const h = harness();
  const said: string[] = [];
  h.guard.beforeExit(() => {
    said.push('status written');
  });
  h.proc.emit('uncaughtException', new Error('injected: a bug nobody caught'));
  expect(await h.exited).toBe(EXIT_FATAL);
  expect(said).toEqual(['status written']);
  expect(h.guard.counters.uncaught_exception).toBe(1);
  expect(h.lines.find((l) => l.level === 60)).toMatchObject({ reason: 'uncaught_exception', err: { message: 'injected: a bug nobody caught' } });
});

test('an unhandled rejection is handled the same way', async () => {
  const h = harness();
  h.proc.emit('unhandledRejection', new Error('injected: a promise nobody awaited'));
  expect(await h.exited).toBe(EXIT_FATAL);
  expect(h.guard.counters.unhandled_rejection).toBe(1);
});

test('a WireGuard core fault reported by the concentrator exits non-zero too', async () => {
  const h = harness();
  h.guard.fatal('wireguard_core_error', new Error('injected: core bug'));
  expect(await h.exited).toBe(EXIT_FATAL);
  expect(h.guard.counters.wireguard_core_error).toBe(1);
  expect(process.exitCode).toBe(EXIT_FATAL);
});

test('last words that hang do not keep the process alive: the exit comes after the timeout', async () => {
  const h = harness(50);
  h.guard.beforeExit(() => new Promise<void>(() => undefined));
  h.proc.emit('uncaughtException', new Error('injected'));
  expect(await h.exited).toBe(EXIT_FATAL);
});

test('a last word that throws does not stop the others or the exit', async () => {
  const h = harness();
  const said: string[] = [];
  h.guard.beforeExit(() => {
    throw new Error('status write failed');
  });
  h.guard.beforeExit(() => {
    said.push('logs flushed');
  });
  h.proc.emit('uncaughtException', new Error('injected'));
  expect(await h.exited).toBe(EXIT_FATAL);
  expect(said).toEqual(['logs flushed']);
});

test('a second fault while exiting is logged and counted, and the exit happens once', async () => {
  const h = harness();
  h.proc.emit('uncaughtException', new Error('first'));
  h.proc.emit('unhandledRejection', new Error('second'));
  await h.exited;
  await new Promise((r) => setTimeout(r, 20));
  expect(h.exit).toHaveBeenCalledTimes(1);
  expect(h.guard.counters).toMatchObject({ uncaught_exception: 1, unhandled_rejection: 1 });
  expect(h.lines.filter((l) => l.level === 60)).toHaveLength(2);
});
