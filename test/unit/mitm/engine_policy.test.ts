// The engine under a flow's policy hook, on loopback: what each decision
// does to the flow, the reason a flow that is not decrypted carries, and
// ECH: a ClientHello with encrypted_client_hello is answered with a
// certificate for its outer (public) name, so an ECH client sees ECH
// rejected and falls back to a plain ClientHello.

import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import * as net from 'node:net';
import { EXT_ENCRYPTED_CLIENT_HELLO } from '../../../mitm/client_hello';
import type { ClientHelloInfo } from '../../../mitm/client_hello';
import type { FlowPolicyHook } from '../../../mitm/flow_policy';
import { alertRecord } from '../../../mitm/terminate';
import { ServerFlightScanner } from '../../../mitm/upstream';
import { issueCert } from '../../helpers/pki';
import { removeTempDirs } from './ca_helpers';
import { Pki, fixedPolicy, handshake, makePki, originCert, withEngine } from './engine_harness';
import { clientHelloBytes, withExtension } from './tls_clients';

let pki: Pki;
const HOST = 'site.test';

beforeAll(() => {
  pki = makePki();
});
afterAll(() => removeTempDirs());

const origin = (host = HOST): https.Server => https.createServer(originCert(pki, host), (_q, s) => s.end('origin says hi'));

describe('decisions', () => {
  test('a bypass by a rule without names is relayed raw without a probe: the client sees the origin\'s own certificate', async () => {
    const o = origin();
    const policy = fixedPolicy({ action: 'bypass', reason: 'policy-bypass', verify: false, unverified: 'inspect' });
    await withEngine(pki, o, async (eut) => {
      const r = await handshake(eut.port, { servername: HOST, ca: [pki.root.pem] });
      expect(r.ok).toBe(true);
      if (r.ok) r.socket.destroy();
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ mode: 'bypass', undecrypted: 'policy-bypass' });
      expect(eut.records.ofType('tls_bypass')).toEqual([expect.objectContaining({ reason: 'policy-bypass', verified: 'none' })]);
      expect(eut.engine.bypass.probes).toBe(0);
      expect(policy.undecryptedSeen).toEqual(['policy-bypass']);
    }, { policy });
  });

  test('a bypass by name toward a server that cannot prove the name is blocked when the flow would be blocked without the name', async () => {
    const c = issueCert({ cn: HOST, dns: [HOST], ips: ['127.0.0.1'] });
    const impostor = https.createServer({ key: c.keyPem, cert: c.pem }, (_q, s) => s.end('impostor'));
    let impostorHandshakes = 0;
    impostor.on('secureConnection', () => impostorHandshakes++);
    const policy = fixedPolicy({ action: 'bypass', reason: 'category', verify: true, unverified: 'block' });
    await withEngine(pki, impostor, async (eut) => {
      const r = await handshake(eut.port, { servername: HOST, ca: [pki.root.pem] });
      expect(r).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' });
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ result: 'blocked_by_policy', undecrypted: 'upstream-cert-error:self_signed' });
      expect(eut.records.ofType('tls_bypass_refused')).toEqual([expect.objectContaining({ bypass: 'category', reason: 'self_signed' })]);
      // Only the concentrator's own probe spoke TLS to it; nothing of the client's reached it.
      expect(impostorHandshakes).toBeLessThanOrEqual(1);
    }, { policy });
  });

  test('every record of a flow carries the rule and action its hook decided', async () => {
    const o = origin();
    const policy = (flow: { rule?: string; action?: string }): FlowPolicyHook => ({
      tls: () => {
        flow.rule = 'inspect-tls';
        flow.action = 'inspect';
        return { action: 'inspect' };
      },
      nonTls: () => 'nonTls',
    });
    await withEngine(pki, o, async (eut) => {
      const r = await handshake(eut.port, { servername: HOST, ca: [pki.ca.certPem] });
      expect(r.ok).toBe(true);
      if (r.ok) r.socket.end();
      await eut.ended(1);
      expect(eut.records.all.length).toBeGreaterThan(0);
      for (const rec of eut.records.all) expect(rec).toMatchObject({ rule: 'inspect-tls', action: 'inspect' });
    }, { policy });
  });
});

describe('traffic that is not TLS under policy', () => {
  const plain = (): net.Server => net.createServer((s) => s.on('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')));

  const request = (port: number): Promise<string> => new Promise((resolve) => {
    let got = '';
    const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nhost: site.test\r\n\r\n'));
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
  });

  test('an allow relays it although tls.nonTls blocks, and the reason is non-tls', async () => {
    const policy = fixedPolicy({ action: 'inspect' }, 'allow');
    await withEngine(pki, plain(), async (eut) => {
      expect(await request(eut.port)).toContain('200 OK');
      await eut.ended(1);
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'http', outcome: 'allow' })]);
      expect(policy.undecryptedSeen).toEqual(['non-tls']);
    }, { policy, nonTls: 'block' });
  });

  test('a block refuses it although tls.nonTls allows', async () => {
    await withEngine(pki, plain(), async (eut) => {
      expect(await request(eut.port)).toBe('');
      await eut.ended(1);
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ outcome: 'block' })]);
    }, { policy: fixedPolicy({ action: 'inspect' }, 'block'), nonTls: 'allow' });
  });
});

describe('Encrypted ClientHello (ECH)', () => {
  const PUBLIC_NAME = 'public.ech.test';

  /** Sends `hello`, reads the server's TLS 1.2 flight in clear, then answers with `alert` and closes. */
  function exchange(port: number, hello: Buffer, alert: number): Promise<X509Certificate | null> {
    return new Promise((resolve) => {
      const scanner = new ServerFlightScanner();
      const c = net.connect(port, '127.0.0.1', () => c.write(hello));
      c.on('data', (d: Buffer) => {
        if (!scanner.push(d).complete) return;
        c.end(alertRecord(alert));
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve(scanner.flight.chain[0] ?? null));
    });
  }

  test('a ClientHello with encrypted_client_hello gets a company certificate for its outer name; the client\'s ECH rejection is logged as ech', async () => {
    const seen: ClientHelloInfo[] = [];
    const policy = fixedPolicy({ action: 'inspect' });
    const hook: FlowPolicyHook = { ...policy, tls: (hello) => (seen.push(hello), policy.tls(hello)) };
    // A TLS 1.2 hello, so that the certificate we answer with travels in clear and can be read here.
    const plain = await clientHelloBytes(PUBLIC_NAME, { maxVersion: 'TLSv1.2' });
    const hello = withExtension(plain, EXT_ENCRYPTED_CLIENT_HELLO, Buffer.from('00000100012000', 'hex'));
    await withEngine(pki, origin(PUBLIC_NAME), async (eut) => {
      const ECH_REQUIRED = 121;
      const leaf = await exchange(eut.port, hello, ECH_REQUIRED);
      expect(leaf?.checkHost(PUBLIC_NAME)).toBe(PUBLIC_NAME);
      expect(leaf?.checkIssued(new X509Certificate(pki.ca.certPem))).toBe(true);
      const [end] = await eut.ended(1);
      expect(seen.map((h) => [h.sni, h.hasEch])).toEqual([[PUBLIC_NAME, true]]);
      expect(end).toMatchObject({ sni: PUBLIC_NAME, undecrypted: 'ech' });
      expect(policy.undecryptedSeen).toEqual(['ech']);
      expect(eut.engine.counters.ech_rejected).toBe(1);
    }, { policy: hook });
  });
});
