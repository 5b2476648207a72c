// Inspected flows to good origins: a client that trusts only the company CA
// loads real HTTP/1.1 and HTTP/2 origins through the engine, sees a leaf
// minted by the company CA that mirrors the origin's names, and gets the
// origin's bytes unchanged.

import { X509Certificate, randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Server } from 'node:net';
import * as tls from 'node:tls';
import type { RelayTap } from '../../../netstack';
import { removeTempDirs } from './ca_helpers';
import { EngineUnderTest, Pki, close, fixedPolicy, get, handshake, listen, makePki, originCert } from './engine_harness';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const BODY = randomBytes(100_000);

async function withHttpsOrigin<T>(host: string, run: (port: number) => Promise<T>): Promise<T> {
  const { key, cert } = originCert(pki, host);
  const server = https.createServer({ key, cert }, (req, res) => {
    res.setHeader('x-path', req.url ?? '');
    res.end(BODY);
  });
  const port = await listen(server);
  try {
    return await run(port);
  } finally {
    await close(server);
  }
}

test('HTTP/1.1 through the engine: a client trusting only the company CA gets the origin body byte-equal', async () => {
  await withHttpsOrigin('good.test', async (originPort) => {
    const eut = await new EngineUnderTest(pki).start(originPort);
    try {
      const res = await get(eut.port, '/a', { servername: 'good.test', ca: pki.ca.certPem });
      expect(res.status).toBe(200);
      expect(res.body.equals(BODY)).toBe(true);
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ mode: 'inspect', result: 'closed', host: 'good.test', issuer: 'company' });
    } finally {
      await eut.stop();
    }
  });
});

test('the minted leaf mirrors the origin names and is issued by the company CA', async () => {
  await withHttpsOrigin('good.test', async (originPort) => {
    const eut = await new EngineUnderTest(pki).start(originPort);
    try {
      const res = await get(eut.port, '/', { servername: 'good.test', ca: pki.ca.certPem });
      const leaf = new X509Certificate(res.peer.raw);
      expect(leaf.checkIssued(pki.ca.x509)).toBe(true);
      expect(leaf.subjectAltName).toContain('DNS:good.test');
      expect(leaf.subjectAltName).toContain('IP Address:127.0.0.1');
    } finally {
      await eut.stop();
    }
  });
});

test('HTTP/2: the client negotiates h2 because the origin chose it, and the body is byte-equal', async () => {
  const { key, cert } = originCert(pki, 'h2.test');
  const origin = http2.createSecureServer({ key, cert }, (_req, res) => res.end(BODY));
  const originPort = await listen(origin as unknown as Server);
  const eut = await new EngineUnderTest(pki).start(originPort);
  try {
    const session = http2.connect(`https://h2.test:${eut.port}`, {
      ca: [pki.ca.certPem], servername: 'h2.test',
      createConnection: () => tls.connect({ host: '127.0.0.1', port: eut.port, servername: 'h2.test', ca: [pki.ca.certPem], ALPNProtocols: ['h2'] }),
    });
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
      req.end();
    });
    expect(body.equals(BODY)).toBe(true);
    expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2');
    session.close();
    const [end] = await eut.ended(1);
    expect(end).toMatchObject({ mode: 'inspect', alpn: 'h2' });
  } finally {
    await eut.stop();
    await close(origin);
  }
});

test('an HTTP/1.1-only origin makes the engine refuse h2 to the client: ALPN follows what upstream chose', async () => {
  await withHttpsOrigin('h1.test', async (originPort) => {
    const eut = await new EngineUnderTest(pki).start(originPort);
    try {
      const r = await handshake(eut.port, { servername: 'h1.test', ca: [pki.ca.certPem], ALPNProtocols: ['h2', 'http/1.1'] });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.socket.alpnProtocol).toBe('http/1.1');
        r.socket.destroy();
      }
    } finally {
      await eut.stop();
    }
  });
});

test('a client without SNI is validated against the IP SAN of the destination and gets a leaf for that IP', async () => {
  await withHttpsOrigin('ip-only.test', async (originPort) => {
    const eut = await new EngineUnderTest(pki).start(originPort);
    try {
      // node sends no SNI to an IP literal (RFC 6066 §3) and checks the certificate's IP SAN.
      const res = await get(eut.port, '/', { ca: pki.ca.certPem });
      expect(res.body.equals(BODY)).toBe(true);
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ mode: 'inspect', sni: null, host: '127.0.0.1' });
    } finally {
      await eut.stop();
    }
  });
});

test('the http-log hook sees the decrypted request and response bytes', async () => {
  await withHttpsOrigin('log.test', async (originPort) => {
    const seen = { up: [] as Buffer[], down: [] as Buffer[], ended: false, alpn: '' as string | null };
    const eut = await new EngineUnderTest(pki, {
      httpLogger: (_flow, alpn): RelayTap => {
        seen.alpn = alpn;
        return { clientToServer: (c) => seen.up.push(c), serverToClient: (c) => seen.down.push(c), end: () => (seen.ended = true) };
      },
    }).start(originPort);
    try {
      await get(eut.port, '/logged?q=1', { servername: 'log.test', ca: pki.ca.certPem });
      await eut.ended(1);
      expect(Buffer.concat(seen.up).toString()).toMatch(/^GET \/logged\?q=1 HTTP\/1\.1\r\n/);
      expect(Buffer.concat(seen.down).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(seen.ended).toBe(true);
    } finally {
      await eut.stop();
    }
  });
});

test('a throwing http-log hook is detached and counted; the transfer still completes', async () => {
  await withHttpsOrigin('badlog.test', async (originPort) => {
    const eut = await new EngineUnderTest(pki, {
      httpLogger: (): RelayTap => ({
        clientToServer: () => { throw new Error('parser bug'); },
        serverToClient: () => undefined,
        end: () => undefined,
      }),
    }).start(originPort);
    try {
      const res = await get(eut.port, '/', { servername: 'badlog.test', ca: pki.ca.certPem });
      expect(res.body.equals(BODY)).toBe(true);
      await eut.ended(1);
      expect(eut.engine.counters.http_logger_errors).toBe(1);
    } finally {
      await eut.stop();
    }
  });
});

test('the policy hook can block a flow: the client gets an access_denied alert and no upstream TLS is attempted', async () => {
  let originHandshakes = 0;
  const { key, cert } = originCert(pki, 'blocked.test');
  const origin = https.createServer({ key, cert }, (_q, s) => s.end('x'));
  origin.on('secureConnection', () => originHandshakes++);
  const eut = new EngineUnderTest(pki, {});
  eut.policy = fixedPolicy({ action: 'block' });
  await eut.start(await listen(origin));
  try {
    const r = await handshake(eut.port, { servername: 'blocked.test', ca: [pki.ca.certPem] });
    expect(r).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
    const [end] = await eut.ended(1);
    expect(end).toMatchObject({ result: 'blocked_by_policy' });
    expect(eut.records.ofType('tls_blocked')).toHaveLength(1);
    expect(originHandshakes).toBe(0);
  } finally {
    await eut.stop();
    await close(origin);
  }
});
