// The records an inspected flow leaves in DATA_DIR/logs/<user>.ndjson, with
// the real HTTP log parser wired into the engine's hook, over in-memory
// connections: one `http` record per request, and none of the secrets the
// request carried (issue 5: "greps every log file for those secrets and
// finds none").

import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { join } from 'node:path';
import type { HttpLoggerFactory, InspectionEngineOptions } from '../../../../mitm/engine';
import { createHttpLogger } from '../../../../mitm/http_log';
import { UserLog } from '../../../../vpn/logs/user_log';
import { removeTempDirs } from '../ca_helpers';
import { EngineOverMemory, get, originCert } from './adapter';
import { type Pki, makePki } from './machine';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const SECRETS = ['Bearer-S3CR3T-AUTHZ', 'sid=S3CR3T-COOKIE', 'hunter2-S3CR3T-PASSWORD', 'S3CR3T-SET-COOKIE', 'S3CR3T-QUERY-TOKEN'];

function wired(userLog: UserLog): Partial<InspectionEngineOptions> {
  const httpLogger: HttpLoggerFactory = (flow, alpn, ctx) =>
    createHttpLogger({ alpn, sniHost: ctx.sni, now: Date.now, emit: (r) => userLog.write(flow.user, flow.peer, 'http', { ...r }) });
  return { records: userLog, httpLogger };
}

const readAllLogs = (dir: string): string => readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('');

test('HTTP/1.1 requests carrying credentials leave one http record each and no secret in any log file', async () => {
  const origin = https.createServer(originCert(pki, 'shop.test'), (req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('set-cookie', 'session=S3CR3T-SET-COOKIE');
      res.end('ok');
    });
  });
  const userLog = new UserLog({ dataDir: pki.dataDir });
  const eut = new EngineOverMemory(pki, origin, wired(userLog));
  try {
    await get(eut, '/login?token=S3CR3T-QUERY-TOKEN', {
      servername: 'shop.test', ca: pki.ca.certPem, method: 'POST', body: Buffer.from('user=alice&password=hunter2-S3CR3T-PASSWORD'),
      headers: { authorization: 'Bearer Bearer-S3CR3T-AUTHZ', cookie: 'sid=S3CR3T-COOKIE', 'user-agent': 'engine-test/1', 'content-type': 'application/x-www-form-urlencoded' },
    });
    await eut.ended(1);
  } finally {
    await userLog.close();
  }
  const text = readAllLogs(userLog.dir);
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(records.filter((r) => r.type === 'http')).toEqual([
    expect.objectContaining({ user: 'alice', peer: 'peer-key-alice', method: 'POST', host: 'shop.test', status: 200, userAgent: 'engine-test/1' }),
  ]);
  expect(records.filter((r) => r.type === 'flow_end')).toHaveLength(1);
  expect(statSync(userLog.pathFor('alice')).mode & 0o777).toBe(0o600);
});

test('HTTP/2 requests are logged from the decrypted stream, without their secrets', async () => {
  const origin = http2.createSecureServer(originCert(pki, 'h2shop.test'), (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const userLog = new UserLog({ dataDir: pki.dataDir });
  const eut = new EngineOverMemory(pki, origin, wired(userLog), 'bob');
  try {
    const session = http2.connect('https://h2shop.test', {
      createConnection: () => tls.connect({ socket: eut.connect(), servername: 'h2shop.test', ca: [pki.ca.certPem], ALPNProtocols: ['h2'] }),
    });
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': `/api/${i}?token=S3CR3T-QUERY-TOKEN`, authorization: 'Bearer Bearer-S3CR3T-AUTHZ', cookie: 'sid=S3CR3T-COOKIE' });
        req.on('error', reject);
        req.resume();
        req.on('end', resolve);
        req.end('password=hunter2-S3CR3T-PASSWORD');
      });
    }
    session.close();
    await eut.ended(1);
  } finally {
    await userLog.close();
  }
  const text = readFileSync(userLog.pathFor('bob'), 'utf8');
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  const http = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.type === 'http');
  // node's client sends :authority with the port; the parser logs it as sent.
  expect(http.map((r) => [r.method, String(r.host).replace(/:443$/, ''), r.status, r.protocol])).toEqual([0, 1, 2].map(() => ['POST', 'h2shop.test', 200, 'h2']));
});
