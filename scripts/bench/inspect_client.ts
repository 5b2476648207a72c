// Client side of the inspection benchmark, run inside a client namespace so
// every connection crosses the tunnel and the pipeline's 443 interception.
// Each request is a fresh TCP connection and a full TLS handshake: no
// keep-alive, no session resumption (maxCachedSessions 0), so the proxy
// terminates and originates one TLS session per request. Prints one JSON line.
//
//   probe IP NAME CA                 which certificate a client sees: issuer, and
//                                    whether it chains to CA (the pipeline's)
//   conns IP NAME CA COUNT POOL MS   after one warm-up request, up to COUNT
//                                    requests for /small, POOL at a time, for at
//                                    most MS; counts completed and failed ones
//   first IP CA MS WARM NAME...      two unmeasured requests to WARM (a name the
//                                    pipeline has seen), then per NAME: time to the
//                                    response headers of the first request ever,
//                                    then of two repeats
//   warm IP CA NAME...               one request per name, nothing timed
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';

const REQUEST_TIMEOUT_MS = 10_000;

interface Target {
  ip: string;
  name: string;
  ca: Buffer;
  verify: boolean;
}

interface Answer {
  status: number;
  ttfbMs: number;
  authorized: boolean;
  authorizationError: string | null;
  issuer: string;
}

const agent = new Agent({ keepAlive: false, maxCachedSessions: 0 });

/** GET /small over a fresh connection; resolves when the body has ended. */
function get(t: Target): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request({
      host: t.ip, port: 443, path: '/small', servername: t.name, headers: { host: t.name },
      ca: t.ca, rejectUnauthorized: t.verify, agent, timeout: REQUEST_TIMEOUT_MS,
    }, (res) => {
      const ttfbMs = Number(process.hrtime.bigint() - start) / 1e6;
      const sock = res.socket as TLSSocket;
      const peer = sock.getPeerCertificate();
      const issuer = peer && peer.issuer ? `${peer.issuer.O ?? ''}/${peer.issuer.CN ?? ''}` : '(none)';
      const err = sock.authorizationError;
      const answer: Answer = {
        status: res.statusCode ?? 0, ttfbMs, authorized: sock.authorized, issuer,
        authorizationError: err === undefined || err === null ? null : String(err),
      };
      res.resume();
      res.on('end', () => resolve(answer));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function probe(t: Target): Promise<object> {
  try {
    const a = await get({ ...t, verify: false });
    return { ok: true, status: a.status, authorized: a.authorized, authorizationError: a.authorizationError, issuer: a.issuer };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

async function conns(t: Target, count: number, pool: number, limitMs: number): Promise<object> {
  await get(t); // warm-up: the leaf for this name is minted and cached now
  const started = Date.now();
  const deadline = started + limitMs;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (issued < count && Date.now() < deadline) {
      issued++;
      try {
        const a = await get(t);
        if (a.status === 200) done++;
        else failed++;
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: pool }, worker));
  return { done, failed, ms: Date.now() - started, firstError };
}

async function first(t: Omit<Target, 'name'>, limitMs: number, warmName: string, names: string[]): Promise<object> {
  const deadline = Date.now() + limitMs;
  // This process's own TLS and HTTP code is compiled on these, not on the first measured name.
  for (let i = 0; i < 2; i++) await get({ ...t, name: warmName });
  const samples: Array<{ name: string; firstMs: number; warmMs: number[] }> = [];
  let firstError: string | null = null;
  for (const name of names) {
    if (Date.now() > deadline) break;
    try {
      const target = { ...t, name };
      const a = await get(target);
      const warm = [await get(target), await get(target)];
      samples.push({ name, firstMs: a.ttfbMs, warmMs: warm.map((w) => w.ttfbMs) });
    } catch (err) {
      firstError ??= (err as Error).message;
    }
  }
  return { samples, firstError };
}

async function warm(t: Omit<Target, 'name'>, names: string[]): Promise<object> {
  let failed = 0;
  let firstError: string | null = null;
  for (const name of names) {
    try {
      await get({ ...t, name });
    } catch (err) {
      failed++;
      firstError ??= (err as Error).message;
    }
  }
  return { done: names.length - failed, failed, firstError };
}

async function main(): Promise<void> {
  const [mode, ...a] = process.argv.slice(2);
  const base = (ip: string, name: string, caFile: string): Target => ({ ip, name, ca: readFileSync(caFile), verify: true });
  let out: object;
  if (mode === 'probe' && a.length === 3) out = await probe(base(a[0], a[1], a[2]));
  else if (mode === 'conns' && a.length === 6) out = await conns(base(a[0], a[1], a[2]), Number(a[3]), Number(a[4]), Number(a[5]));
  else if (mode === 'first' && a.length >= 5) out = await first(base(a[0], '', a[1]), Number(a[2]), a[3], a.slice(4));
  else if (mode === 'warm' && a.length >= 3) out = await warm(base(a[0], '', a[1]), a.slice(2));
  else throw new Error('usage: inspect_client probe IP NAME CA | conns IP NAME CA COUNT POOL MS | first IP CA MS WARM NAME... | warm IP CA NAME...');
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err: Error) => {
  process.stdout.write(JSON.stringify({ ok: false, error: err.message }) + '\n');
  process.exit(1);
});
