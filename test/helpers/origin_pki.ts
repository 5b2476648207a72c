// Certificates for e2e origin servers, from a test "public" root.
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { makeLeaf, makeRoot } from './pki';

export function makeTestPki(dir: string, names: string[]): { caFile: string; certFile: string; keyFile: string } {
  const root = makeRoot({ cn: 'Test Public Root', key: 'p256' });
  const leaf = makeLeaf(root, { cn: names.find((n) => isIP(n) === 0), key: 'p256', dns: names.filter((n) => isIP(n) === 0), ips: names.filter((n) => isIP(n) !== 0) });
  const caFile = join(dir, 'test-root.pem');
  const certFile = join(dir, 'origin.crt');
  const keyFile = join(dir, 'origin.key');
  writeFileSync(caFile, root.pem);
  writeFileSync(certFile, leaf.pem);
  writeFileSync(keyFile, leaf.keyPem, { mode: 0o600 });
  return { caFile, certFile, keyFile };
}
