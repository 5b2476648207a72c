// Reading a TLS 1.2 server's first flight in clear (RFC 5246 §7.4): its
// Certificate and whether it sends a CertificateRequest, fed the bytes a
// real node:tls server answers a ClientHello with, in one piece or one byte
// at a time. No sockets: the server is fed in memory.

import * as https from 'node:https';
import { ServerFlightScanner } from '../../../../mitm/upstream';
import { removeTempDirs } from '../ca_helpers';
import { originCert } from '../engine/adapter';
import { type Pki, helloBytes, makePki } from '../engine/machine';
import { connectTo } from '../memory_streams';

let pki: Pki;
const HOST = 'mtls.test';
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

async function flightOf(server: https.Server, byteByByte: boolean): Promise<ServerFlightScanner['flight']> {
  const hello = await helloBytes(HOST, { maxVersion: 'TLSv1.2' });
  return new Promise((resolve) => {
    const scanner = new ServerFlightScanner();
    const end = connectTo(server);
    end.on('data', (d: Buffer) => {
      const chunks = byteByByte ? [...d].map((b) => Buffer.from([b])) : [d];
      for (const chunk of chunks) scanner.push(chunk);
      if (scanner.flight.complete) resolve(scanner.flight);
    });
    end.on('error', () => undefined);
    end.write(hello);
  });
}

const mtlsOrigin = (): https.Server => https.createServer({ ...originCert(pki, HOST), requestCert: true, rejectUnauthorized: true, ca: [pki.root.pem], maxVersion: 'TLSv1.2' });

test.each([false, true])('a CertificateRequest and the presented chain are seen (one byte at a time: %s)', async (byteByByte) => {
  const flight = await flightOf(mtlsOrigin(), byteByByte);
  expect(flight).toMatchObject({ certificateRequested: true, complete: true });
  expect(flight.chain.map((c) => c.subject)).toEqual([`CN=${HOST}`, expect.stringContaining('Intermediate')]);
});

test('a server that asks for no client certificate is told apart', async () => {
  const flight = await flightOf(https.createServer({ ...originCert(pki, HOST), maxVersion: 'TLSv1.2' }), false);
  expect(flight).toMatchObject({ certificateRequested: false, complete: true });
  expect(flight.chain).toHaveLength(2);
});

test('a flight fed a byte at a time is joined a record at a time, not copied again for every byte', async () => {
  const scanner = new ServerFlightScanner();
  const seen: Buffer[] = [];
  const hello = await helloBytes(HOST, { maxVersion: 'TLSv1.2' });
  await new Promise<void>((resolve) => {
    const end = connectTo(mtlsOrigin());
    end.on('data', (d: Buffer) => {
      seen.push(d);
      if (scanner.push(d).complete) resolve();
    });
    end.on('error', () => undefined);
    end.write(hello);
  });
  const flight = Buffer.concat(seen);
  const concat = jest.spyOn(Buffer, 'concat');
  try {
    const again = new ServerFlightScanner();
    for (const b of flight) again.push(Buffer.from([b]));
    expect(again.flight).toMatchObject({ certificateRequested: true, complete: true });
    expect(again.flight.chain).toHaveLength(2);
    // A few joins per record and message, against one per byte of a flight of a few KB.
    expect(flight.length).toBeGreaterThan(1000);
    expect(concat.mock.calls.length).toBeLessThan(40);
  } finally {
    concat.mockRestore();
  }
});
