// A real TLS handshake on loopback with a minted leaf: the point of minting
// is that a client trusting only the company CA accepts it for the host it
// mirrors, and for nothing else.

import { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { LoadedCa, ensureCa } from '../../../mitm/ca';
import { LeafMinter, MintedLeaf } from '../../../mitm/mint';
import { removeTempDirs, tempDir } from './ca_helpers';

let ca: LoadedCa;
let untrusted: LoadedCa;
beforeAll(() => {
  ({ ca, untrusted } = ensureCa(tempDir()));
});
afterAll(removeTempDirs);

async function withServer<T>(leaf: MintedLeaf, issuerPem: string, run: (port: number) => Promise<T>): Promise<T> {
  const server = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem + issuerPem }, (socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await run((server.address() as AddressInfo).port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Connects trusting only `caPem`; resolves with the data read, or the error code/message. */
function handshake(port: number, servername: string, caPem: string): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: [caPem] });
    let data = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('data', (d: Buffer) => { data += d.toString(); });
    socket.on('end', () => resolve({ ok: true, detail: data }));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, detail: `${e.code ?? ''} ${e.message}` }));
  });
}

const hostLeaf = (minter: LeafMinter): MintedLeaf =>
  minter.mint({ subjectCN: 'shop.example.test', sans: [{ type: 'dns', value: 'shop.example.test' }] }, { now: Date.now() });

test('a client trusting only the company CA completes the handshake for the mirrored host', async () => {
  const leaf = hostLeaf(new LeafMinter(ca));
  const result = await withServer(leaf, ca.certPem, (port) => handshake(port, 'shop.example.test', ca.certPem));
  expect(result).toEqual({ ok: true, detail: 'hello' });
});

test('the same leaf is rejected for another host with a hostname error', async () => {
  const leaf = hostLeaf(new LeafMinter(ca));
  const result = await withServer(leaf, ca.certPem, (port) => handshake(port, 'bank.example.test', ca.certPem));
  expect(result.ok).toBe(false);
  expect(result.detail).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
});

test('a leaf from the untrusted CA is rejected by a client trusting the company CA', async () => {
  const leaf = hostLeaf(new LeafMinter(untrusted));
  const result = await withServer(leaf, untrusted.certPem, (port) => handshake(port, 'shop.example.test', ca.certPem));
  expect(result.ok).toBe(false);
  expect(result.detail).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
});

test('an RSA leaf key also completes the handshake', async () => {
  const leaf = hostLeaf(new LeafMinter(ca, { keyType: 'rsa-2048' }));
  const result = await withServer(leaf, ca.certPem, (port) => handshake(port, 'shop.example.test', ca.certPem));
  expect(result).toEqual({ ok: true, detail: 'hello' });
});
