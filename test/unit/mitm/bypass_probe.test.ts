// The bypass gate's probe over in-memory connections: the concentrator
// completes a TLS handshake with the destination itself, on a connection
// made by the dialer the flows use, and validates the certificate for the
// name as inspection would. Only a destination that proves the name passes.

import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import { tlsProbe } from '../../../mitm/bypass_probe';
import { TrustStore } from '../../../mitm/upstream';
import { issueCert, makeLeaf } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { originCert } from './engine/adapter';
import { type Pki, makePki } from './engine/machine';
import { connectTo } from './memory_streams';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const HOST = 'bank.test';
const target = { address: '192.0.2.10', port: 443, name: HOST, alpn: ['http/1.1'] };

function probeVia(server: https.Server, dialed: string[] = []): ReturnType<typeof tlsProbe> {
  return tlsProbe({
    trust: new TrustStore([pki.root.cert]), revocation: 'off', timeoutMs: 5_000, now: () => new Date(),
    dial: (host, port): Promise<Duplex> => {
      dialed.push(`${host}:${port}`);
      return Promise.resolve(connectTo(server));
    },
  });
}

test('a destination that proves the name passes, until its leaf expires; the connection is made by the flows\' dialer, to the flow\'s destination', async () => {
  const leaf = makeLeaf(pki.intermediate, { dns: [HOST] });
  const genuine = https.createServer({ key: leaf.keyPem, cert: leaf.pem + pki.intermediate.pem });
  const dialed: string[] = [];
  expect(await probeVia(genuine, dialed)(target)).toEqual({ ok: true, notAfter: Date.parse(leaf.cert.validTo) });
  expect(dialed).toEqual(['192.0.2.10:443']);
});

test.each([
  ['a self-signed certificate for the name', 'self_signed', () => issueCert({ cn: HOST, dns: [HOST] })],
  ['a valid certificate for another name', 'hostname_mismatch', (p: Pki) => makeLeaf(p.intermediate, { dns: ['other.test'] })],
] as const)('a destination with %s fails with %s', async (_what, reason, make) => {
  const c = make(pki);
  const impostor = https.createServer({ key: c.keyPem, cert: c.pem + pki.intermediate.pem });
  expect(await probeVia(impostor)(target)).toMatchObject({ ok: false, reason });
});

test('a destination that does not speak TLS fails, with the handshake as its reason', async () => {
  const plain = https.createServer(originCert(pki, HOST));
  plain.removeAllListeners('connection');
  plain.on('connection', (s: Duplex) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
  expect(await probeVia(plain)(target)).toMatchObject({ ok: false, reason: 'tls_handshake_failed' });
});
