// Trust anchors: the Mozilla roots bundled in node:tls by default, or an
// admin's PEM bundle (tls.upstreamCaFile) that replaces them.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { TrustStore, validateChain } from '../../../../mitm/upstream';
import { makeChain } from '../../../helpers/pki';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sightline-trust-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('loads every root bundled in node:tls', () => {
  expect(TrustStore.system().size).toBe(new Set(rootCertificates).size);
});

it('does not trust a private root by default', () => {
  const { leaf, intermediate, root } = makeChain('www.example.com');
  const result = validateChain({
    chain: [leaf.cert, intermediate.cert, root.cert],
    hostname: 'www.example.com',
    ip: '192.0.2.1',
    now: new Date(),
    trust: TrustStore.fromConfig({}),
    negotiatedProtocol: 'TLSv1.3',
  });
  expect(result.ok ? 'ok' : result.reason).toBe('untrusted_root');
});

it('trusts exactly the roots in tls.upstreamCaFile when it is configured', () => {
  const { leaf, intermediate, root } = makeChain('www.example.com');
  const file = join(dir, 'bundle.pem');
  writeFileSync(file, `# corporate bundle\n${root.pem}`);
  const trust = TrustStore.fromConfig({ upstreamCaFile: file });
  const result = validateChain({ chain: [leaf.cert, intermediate.cert], hostname: 'www.example.com', ip: '192.0.2.1', now: new Date(), trust, negotiatedProtocol: 'TLSv1.2' });
  expect({ size: trust.size, ok: result.ok }).toEqual({ size: 1, ok: true });
});

it('names the file when the bundle holds no certificate', () => {
  const file = join(dir, 'empty.pem');
  writeFileSync(file, 'not a bundle');
  expect(() => TrustStore.fromPemFile(file)).toThrow(/upstreamCaFile .*empty\.pem: no CERTIFICATE blocks/);
});
