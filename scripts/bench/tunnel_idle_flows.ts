// Opens many TCP connections to one host:port with bounded concurrency and
// keeps them idle: the client side of the memory-per-flow measurement, run
// inside a client namespace so every connection crosses the tunnel.
// Prints one JSON line {opened, failed, pending, ms} when all attempts ended (or the
// deadline passed), then holds the connections until it is killed.
// Usage: node tunnel_idle_flows.js HOST PORT COUNT CONCURRENCY DEADLINE_MS
import { connect, type Socket } from 'node:net';

// A connect that takes longer than this is counted as failed: through a
// working tunnel a SYN is answered in milliseconds.
const CONNECT_TIMEOUT_MS = 5000;

function main(): void {
  const [host, portArg, countArg, concurrencyArg, deadlineArg] = process.argv.slice(2);
  if (host === undefined || deadlineArg === undefined) throw new Error('usage: tunnel_idle_flows HOST PORT COUNT CONCURRENCY DEADLINE_MS');
  const port = Number(portArg);
  const count = Number(countArg);
  const concurrency = Number(concurrencyArg);
  const started = Date.now();
  const deadline = started + Number(deadlineArg);
  const held: Socket[] = [];
  let attempted = 0;
  let opened = 0;
  let failed = 0;
  let pending = 0;
  let reported = false;

  const report = (): void => {
    if (reported) return;
    reported = true;
    process.stdout.write(JSON.stringify({ opened, failed, pending, ms: Date.now() - started }) + '\n');
  };

  const next = (): void => {
    while (pending < concurrency && attempted < count && Date.now() < deadline) {
      attempted++;
      pending++;
      const s = connect({ host, port });
      let settled = false;
      const settle = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        pending--;
        if (ok) opened++;
        else failed++;
        if (attempted >= count || Date.now() >= deadline) {
          if (pending === 0) report();
        } else {
          next();
        }
      };
      s.setTimeout(CONNECT_TIMEOUT_MS, () => {
        if (!settled) s.destroy();
      });
      s.once('connect', () => {
        s.setTimeout(0);
        held.push(s);
        settle(true);
      });
      s.on('error', () => settle(false));
      s.on('close', () => settle(false));
    }
  };

  next();
  // Whatever is still pending at the deadline is reported as not opened.
  setTimeout(report, Math.max(0, deadline - Date.now()) + CONNECT_TIMEOUT_MS).unref();
  // Keeps the process (and so every held connection) alive until killed.
  setInterval(() => undefined, 60_000);
}

main();
