// Issue 8: a flow failure is logged once, not per packet. The first incident
// of a reason is a log line with its user and flow; the rest of its burst is
// summed up in one line when the burst goes quiet (or every minute).
import { Writable } from 'node:stream';
import pino from 'pino';
import type { StackIncident } from '../../../../netstack';
import { IncidentLog } from '../../../../vpn/process';

function harness() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }));
  let now = 0;
  const log_ = new IncidentLog(log);
  // The concentrator passes its clock's `now` to every call; here, the test's.
  const incidents = { report: (i: StackIncident) => log_.report(i, now), flush: () => log_.flush(now) };
  return { incidents, lines, at: (t: number) => (now = t) };
}

const owner = { id: 'key', user: 'alice' };
const tick = () => new Promise((r) => setImmediate(r));

test('a thousand identical incidents in a burst are one line, then one summary when the burst goes quiet', async () => {
  const h = harness();
  for (let i = 0; i < 1000; i++) h.incidents.report({ reason: 'udp_connect_enetunreach', severity: 'info', owner, flow: `f${i}` });
  h.at(5_000);
  h.incidents.flush();
  await tick();
  expect(h.lines).toHaveLength(1);
  expect(h.lines[0]).toMatchObject({ reason: 'udp_connect_enetunreach', user: 'alice', flow: 'f0' });
  h.at(16_000);
  h.incidents.flush();
  await tick();
  expect(h.lines).toHaveLength(2);
  expect(h.lines[1]).toMatchObject({ reason: 'udp_connect_enetunreach', more: 999 });
});

test('each reason has its own burst, and a new burst after a quiet spell is logged again', async () => {
  const h = harness();
  h.incidents.report({ reason: 'fd_limit', severity: 'warn', owner });
  h.incidents.report({ reason: 'tcp_flow_error', severity: 'error', owner, error: new Error('bug') });
  h.at(20_000);
  h.incidents.flush();
  h.incidents.report({ reason: 'fd_limit', severity: 'warn', owner });
  await tick();
  expect(h.lines.map((l) => [l.reason, l.level])).toEqual([['fd_limit', 40], ['tcp_flow_error', 50], ['fd_limit', 40]]);
  expect(h.lines[1]).toMatchObject({ err: { message: 'bug' } });
});

test('a burst that never ends is summed up every minute', async () => {
  const h = harness();
  for (let t = 0; t <= 130_000; t += 1_000) {
    h.at(t);
    h.incidents.report({ reason: 'fd_limit', severity: 'warn', owner });
    h.incidents.flush();
  }
  await tick();
  expect(h.lines.map((l) => l.more ?? 'first')).toEqual(['first', 60, 60]);
});
