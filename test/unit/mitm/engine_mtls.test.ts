// Mutual TLS, on loopback: a server that demands a client certificate cannot
// be inspected (the concentrator has no certificate to present), so the
// first flow that meets one teaches the engine to relay that (user, host)
// undecrypted, and the next flow is relayed raw once the server proved its
// name, whatever TLS version it speaks: TLS 1.3 says so with a
// certificate_required alert, TLS 1.2 with a CertificateRequest in clear.

import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { ServerFlightScanner } from '../../../mitm/upstream';
import { makeLeaf } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { Pki, close, fixedPolicy, get, listen, makePki, originCert, withEngine } from './engine_harness';
import { clientHelloBytes } from './tls_clients';

let pki: Pki;
const HOST = 'mtls.test';

beforeAll(() => {
  pki = makePki();
});
afterAll(() => removeTempDirs());

/** An origin that accepts only clients with a certificate from the test PKI. */
function mtlsOrigin(maxVersion: tls.SecureVersion): https.Server {
  return https.createServer(
    { ...originCert(pki, HOST), requestCert: true, rejectUnauthorized: true, ca: [pki.root.pem], maxVersion },
    (_q, s) => s.end('hello, certified client'),
  );
}

const clientCert = () => {
  const c = makeLeaf(pki.intermediate, { cn: 'alice', eku: ['clientAuth'] });
  return { key: c.keyPem, cert: c.pem + pki.intermediate.pem };
};

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('a server demanding a client certificate (%s)', (version) => {
  test('the first flow fails and is learned; the next is relayed raw after the server proved its name, and the client\'s own certificate reaches it', async () => {
    const policy = fixedPolicy({ action: 'inspect' });
    await withEngine(pki, mtlsOrigin(version), async (eut) => {
      await expect(get(eut.port, '/', { servername: HOST, ca: pki.ca.certPem })).rejects.toThrow();
      await eut.ended(1);
      expect(eut.records.ofType('tls_mtls_learned')).toEqual([expect.objectContaining({ host: HOST, ttlSeconds: 43_200 })]);
      expect(eut.engine.mtls.has('alice', HOST, Date.now())).toBe(true);

      const r = await getWithCert(eut.port);
      expect(r).toBe('hello, certified client');
      await eut.ended(2);
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ host: HOST, reason: 'mtls', verified: 'probe' })]);
      expect(policy.undecryptedSeen).toEqual(['mtls', 'mtls']);
    }, { policy });
  });
});

/**
 * A TCP proxy to `port` that holds every client flight after the first back
 * by `delayMs` (a slow path for the second half of a handshake). With
 * `quietClose` the far side closing is not passed on: the connection just
 * goes silent, as one whose FIN is still on its way.
 */
function slowProxy(port: number, delayMs: number, quietClose = false): net.Server {
  return net.createServer((inbound) => {
    const out = net.connect(port, '127.0.0.1');
    let flights = 0;
    inbound.on('data', (d: Buffer) => void setTimeout(() => out.write(d), flights++ === 0 ? 0 : delayMs));
    out.on('data', (d: Buffer) => inbound.write(d));
    inbound.on('error', () => undefined).on('close', () => out.destroy());
    out.on('error', () => undefined).on('close', () => {
      if (!quietClose) inbound.destroy();
    });
  });
}

describe.each([
  ['after the session was handed to the client (a slow server)', 0],
  ['while the client is still finishing its handshake with us', 800],
])('a demand that arrives %s', (_when, clientDelayMs) => {
  test('is learned all the same, and the flow ends', async () => {
    const origin = mtlsOrigin('TLSv1.3');
    const originPort = await listen(origin);
    try {
      await withEngine(pki, slowProxy(originPort, 400, true), async (eut) => {
        const front = slowProxy(eut.port, clientDelayMs);
        const port = await listen(front);
        try {
          await expect(get(port, '/', { servername: HOST, ca: pki.ca.certPem })).rejects.toThrow();
          await eut.ended(1);
          expect(eut.records.ofType('tls_mtls_learned')).toHaveLength(1);
        } finally {
          await close(front);
        }
      });
    } finally {
      await close(origin);
    }
  });
});

test('another user is not exempted by what one user\'s flow learned', async () => {
  await withEngine(pki, mtlsOrigin('TLSv1.3'), async (eut) => {
    await expect(get(eut.port, '/', { servername: HOST, ca: pki.ca.certPem })).rejects.toThrow();
    await eut.ended(1);
    expect(eut.engine.mtls.has('bob', HOST, Date.now())).toBe(false);
  });
});

describe('reading a TLS 1.2 server\'s first flight', () => {
  async function flightOf(server: https.Server, byteByByte: boolean): Promise<ServerFlightScanner['flight']> {
    const port = await listen(server);
    const hello = await clientHelloBytes(HOST, { maxVersion: 'TLSv1.2' });
    try {
      return await new Promise((resolve) => {
        const scanner = new ServerFlightScanner();
        const c = net.connect(port, '127.0.0.1', () => c.write(hello));
        c.on('data', (d: Buffer) => {
          const chunks = byteByByte ? [...d].map((b) => Buffer.from([b])) : [d];
          for (const chunk of chunks) scanner.push(chunk);
          if (scanner.flight.complete) c.destroy();
        });
        c.on('error', () => undefined);
        c.on('close', () => resolve(scanner.flight));
      });
    } finally {
      await close(server);
    }
  }

  test.each([false, true])('a CertificateRequest and the presented chain are seen (one byte at a time: %s)', async (byteByByte) => {
    const flight = await flightOf(mtlsOrigin('TLSv1.2'), byteByByte);
    expect(flight).toMatchObject({ certificateRequested: true, complete: true });
    expect(flight.chain.map((c) => c.subject)).toEqual([`CN=${HOST}`, expect.stringContaining('Intermediate')]);
  });

  test('a server that asks for no client certificate is told apart', async () => {
    const flight = await flightOf(https.createServer({ ...originCert(pki, HOST), maxVersion: 'TLSv1.2' }), false);
    expect(flight).toMatchObject({ certificateRequested: false, complete: true });
    expect(flight.chain).toHaveLength(2);
  });
});

/** GET / with a client certificate, trusting only the test root: only the real origin can answer. */
function getWithCert(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername: HOST, ca: [pki.root.pem], agent: false, ...clientCert() }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}
