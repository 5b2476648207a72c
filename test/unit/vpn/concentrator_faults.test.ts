// Issue 8: a bug in the WireGuard core, triggered by one datagram, makes the
// running concentrator log it, write its last status (the fault counted) and
// exit non-zero, rather than carry on with protocol state it cannot trust.
// The concentrator runs in-process on loopback with an injected fault.
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Concentrator } from '../../../vpn/concentrator';
import { openDeployment } from '../../../vpn/control';
import { EXIT_FATAL, ProcessGuard } from '../../../vpn/process';
import { MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE } from '../../../vpn/protocol';
import { CookieChecker } from '../../../vpn/protocol/cookie';

jest.setTimeout(60_000);

let dir = '';
const savedExitCode = process.exitCode;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sightline-fault-'));
});
afterEach(() => {
  process.exitCode = savedExitCode;
  rmSync(dir, { recursive: true, force: true });
});

test('a fault injected into the WireGuard core by one datagram: logged, counted in status.json, exit status 70', async () => {
  const port = 20000 + (process.pid % 20000);
  writeFileSync(join(dir, 'sightline.yaml'), `listenPort: ${port}\nlistenAddress: 127.0.0.1\ndns:\n  upstream: ["127.0.0.1:9"]\n`);
  const fatal: string[] = [];
  const log = pino({ level: 'fatal' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      fatal.push(chunk.toString());
      cb();
    },
  }));
  let exited: (code: number) => void = () => undefined;
  const exitCode = new Promise<number>((r) => (exited = r));
  const guard = new ProcessGuard({ log, exit: (code) => exited(code) });
  const c = await Concentrator.start(openDeployment({ dataDir: dir }), log, { guard });
  try {
    jest.spyOn(CookieChecker.prototype, 'checkMac1').mockImplementation(() => {
      throw new Error('injected: protocol bug');
    });
    const initiation = Buffer.alloc(MESSAGE_INITIATION_SIZE);
    initiation[0] = MESSAGE_INITIATION;
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.send(initiation, port, '127.0.0.1', () => r()));
    sock.close();

    expect(await exitCode).toBe(EXIT_FATAL);
    const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { counters: Record<string, Record<string, number>> };
    expect(status.counters.process).toEqual({ uncaught_exception: 0, unhandled_rejection: 0, wireguard_core_error: 1 });
    expect(fatal.join('')).toContain('WireGuard core failed in receive: injected: protocol bug');
  } finally {
    jest.restoreAllMocks();
    await c.stop();
  }
});
