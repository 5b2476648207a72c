// The employee side of the TLS-inspection end-to-end tests: curl and a small
// WebSocket client run inside a client namespace, and readers for the
// per-user records the concentrator writes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, type ExecResult } from '../../scripts/lab/netns';
import type { Client } from './topology';
import type { Site } from './inspect_lab';

/** curl's exit codes that tell the two refusals apart (curl(1) EXIT CODES). */
export const CURL_SSL_CONNECT_ERROR = 35;
export const CURL_PEER_FAILED_VERIFICATION = 60;

export interface CurlOptions {
  path?: string;
  /** The only CA the client trusts; null uses curl's default (system) bundle. */
  cacert: string | null;
  http2?: boolean;
  args?: string[];
  maxTimeS?: number;
}

/** curl https://HOST/PATH with HOST resolved to the site's origin address, through the client's tunnel. */
export function curl(c: Client, site: Site, opts: CurlOptions): ExecResult {
  const maxTime = opts.maxTimeS ?? 10;
  const args = ['-sS', '--max-time', String(maxTime), '--resolve', `${site.host}:443:${site.address}`];
  if (opts.cacert !== null) args.push('--cacert', opts.cacert);
  args.push(opts.http2 ? '--http2' : '--http1.1', ...(opts.args ?? []), `https://${site.host}${opts.path ?? '/'}`);
  return c.ns.exec('curl', args, { timeoutMs: (maxTime + 5) * 1000 });
}

export type UserRecord = Record<string, unknown> & { type: string };

/** Every record in DATA_DIR/logs/<user>.ndjson written in full so far. */
export function userRecords(dataDir: string, user: string): UserRecord[] {
  let text = '';
  try {
    text = readFileSync(join(dataDir, 'logs', `${user}.ndjson`), 'utf8');
  } catch {
    return [];
  }
  // The concentrator appends while the test reads: a last line without its newline is still being written.
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as UserRecord);
}

/** Waits (records are written asynchronously) for a record matching `pred`. */
export function waitForRecord(dataDir: string, user: string, what: string, pred: (r: UserRecord) => boolean, timeoutMs = 5000): Promise<UserRecord> {
  return waitFor(what, () => userRecords(dataDir, user).find(pred), timeoutMs, 100);
}

export interface WsResult {
  /** The HTTP status line of the upgrade response. */
  status: string;
  /** Whether Sec-WebSocket-Accept matched the key (RFC 6455 4.2.2). */
  acceptOk: boolean;
  /** Echoed text messages, in order. */
  echoed: string[];
  elapsedMs: number;
  error?: string;
}

/**
 * Opens a WebSocket over TLS (trusting only `cacert`) to site /ws, sends
 * `messages` one at a time `gapMs` apart, each after the previous echo, and
 * closes. A flow held open across several seconds of idle gaps is what a
 * long-lived stream through the inspection relay looks like.
 */
export function websocketEcho(c: Client, site: Site, cacert: string, messages: string[], gapMs: number): WsResult {
  const script = `
    const tls = require('tls'), crypto = require('crypto'), fs = require('fs');
    const [host, address, caFile, msgs, gap] = ${JSON.stringify([site.host, site.address, cacert, messages, gapMs])};
    const key = crypto.randomBytes(16).toString('base64');
    const expected = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    const started = Date.now();
    const out = { status: '', acceptOk: false, echoed: [], elapsedMs: 0 };
    const finish = (error) => { out.elapsedMs = Date.now() - started; if (error) out.error = error; console.log(JSON.stringify(out)); process.exit(0); };
    const frame = (op, text) => {
      const p = Buffer.from(text), mask = crypto.randomBytes(4);
      const head = p.length < 126 ? Buffer.from([0x80 | op, 0x80 | p.length]) : Buffer.from([0x80 | op, 0x80 | 126, p.length >> 8, p.length & 255]);
      return Buffer.concat([head, mask, Buffer.from(p.map((b, i) => b ^ mask[i & 3]))]);
    };
    const s = tls.connect({ host: address, port: 443, servername: host, ca: fs.readFileSync(caFile), ALPNProtocols: ['http/1.1'] }, () => {
      s.write('GET /ws HTTP/1.1\\r\\nHost: ' + host + '\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: ' + key + '\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
    });
    let buf = Buffer.alloc(0), upgraded = false;
    const sendNext = () => s.write(frame(1, msgs[out.echoed.length]));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\\r\\n\\r\\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        out.status = head.split('\\r\\n')[0];
        out.acceptOk = head.split('\\r\\n').some((l) => l.toLowerCase().startsWith('sec-websocket-accept:') && l.slice(21).trim() === expected);
        buf = buf.subarray(end + 4);
        upgraded = true;
        if (!out.status.includes(' 101 ')) return finish('not upgraded');
        sendNext();
      }
      while (buf.length >= 2) {
        let len = buf[1] & 127, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + len) return;
        const op = buf[0] & 15, payload = buf.subarray(off, off + len).toString();
        buf = buf.subarray(off + len);
        if (op === 8) return finish();
        if (op !== 1) continue;
        out.echoed.push(payload);
        if (out.echoed.length < msgs.length) setTimeout(sendNext, gap);
        else s.write(frame(8, ''));
      }
    });
    s.on('error', (e) => finish(e.message));
    s.on('close', () => finish(out.echoed.length === msgs.length ? undefined : 'closed early'));
    setTimeout(() => finish('timeout'), ${messages.length * gapMs + 10_000});`;
  const r = c.ns.exec('node', ['-e', script], { timeoutMs: messages.length * gapMs + 15_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) return { status: '', acceptOk: false, echoed: [], elapsedMs: 0, error: `client failed: ${r.stderr.trim()}` };
  return JSON.parse(line) as WsResult;
}
