// dialTls against real node:https / node:tls servers on 127.0.0.1,
// one per kind of bad certificate: the failure must be the precise reason,
// never a connection handed on as if it were fine.

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { DialTlsOptions, OcspCache, TrustStore, UpstreamConnection, UpstreamFailure, certIdFor, dialTls, encodeOcspRequest, httpFetch } from '../../../../mitm/upstream';
import { OcspResponder, TestCert, daysFromNow, issueCert, makeIntermediate, makeLeaf, makeRoot, randomSerialHex, startOcspResponder } from '../../../helpers/pki';

const HOST = 'origin.example';
let root: TestCert;
let intermediate: TestCert;
let trust: TrustStore;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(() => {
  root = makeRoot();
  intermediate = makeIntermediate(root);
  trust = new TrustStore([root.cert]);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

async function listen(server: net.Server): Promise<number> {
  const open = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    open.forEach((s) => s.destroy());
    return new Promise((r) => server.close(r));
  });
  return (server.address() as net.AddressInfo).port;
}

/** An HTTPS origin presenting `chain` (leaf first) that answers "hello". */
function httpsOrigin(chain: TestCert[], extra: https.ServerOptions = {}): Promise<number> {
  const server = https.createServer({ key: chain[0].keyPem, cert: chain.map((c) => c.pem).join(''), ALPNProtocols: ['http/1.1'], ...extra }, (_req, res) => res.end('hello'));
  return listen(server);
}

function connect(port: number, overrides: Partial<DialTlsOptions> = {}): Promise<UpstreamConnection | UpstreamFailure> {
  return dialTls({ host: '127.0.0.1', port, servername: HOST, alpn: ['h2', 'http/1.1'], trust, revocation: 'soft', timeoutMs: 3_000, ocspCache: new OcspCache(), now: () => new Date(), ...overrides });
}

async function failureOf(port: number, overrides: Partial<DialTlsOptions> = {}): Promise<string> {
  const result = await connect(port, overrides);
  if (result.ok) {
    result.socket.destroy();
    return 'ok';
  }
  return result.error;
}

describe('a valid origin', () => {
  it('connects, negotiates the ALPN the server picks and returns a usable socket', async () => {
    const leaf = makeLeaf(intermediate, { dns: [HOST] });
    const result = await connect(await httpsOrigin([leaf, intermediate]));
    if (!result.ok) throw new Error(`${result.error}: ${result.detail}`);
    result.socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    const response = await new Promise<string>((resolve) => {
      let text = '';
      result.socket.on('data', (d: Buffer) => (text += d.toString()));
      result.socket.on('end', () => resolve(text));
    });
    expect({ alpn: result.alpn, protocol: result.protocol, body: response.endsWith('hello') }).toEqual({ alpn: 'http/1.1', protocol: 'TLSv1.3', body: true });
  });

  it('reports the chain exactly as the server sent it, without node appending its store root', async () => {
    const leaf = makeLeaf(intermediate, { dns: [HOST] });
    const result = await connect(await httpsOrigin([leaf, intermediate]));
    if (!result.ok) throw new Error(result.detail);
    result.socket.destroy();
    const fp = (cs: { fingerprint256: string }[]): string[] => cs.map((c) => c.fingerprint256);
    expect({ chain: fp(result.chain), path: fp(result.path) }).toEqual({
      chain: fp([leaf.cert, intermediate.cert]),
      path: fp([leaf.cert, intermediate.cert, root.cert]),
    });
  });

  it('validates the destination IP against an IP SAN when the client sent no SNI', async () => {
    const leaf = makeLeaf(intermediate, { ips: ['127.0.0.1'] });
    expect(await failureOf(await httpsOrigin([leaf, intermediate]), { servername: undefined })).toBe('ok');
  });

  it('completes a chain missing its intermediate via AIA from a loopback HTTP server', async () => {
    const aiaPort = await listen(http.createServer((_q, res) => res.end(intermediate.der)));
    const leaf = makeLeaf(intermediate, { dns: [HOST], caIssuersUrl: `http://127.0.0.1:${aiaPort}/int.der` });
    expect(await failureOf(await httpsOrigin([leaf]))).toBe('ok');
  });
});

describe('bad certificates are refused with their precise reason', () => {
  it.each<[string, () => TestCert[]]>([
    ['expired', () => [makeLeaf(intermediate, { dns: [HOST], notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) }), intermediate]],
    ['not_yet_valid', () => [makeLeaf(intermediate, { dns: [HOST], notBefore: daysFromNow(1), notAfter: daysFromNow(30) }), intermediate]],
    ['self_signed', () => [issueCert({ cn: HOST, dns: [HOST], eku: ['serverAuth'] })]],
    ['hostname_mismatch', () => [makeLeaf(intermediate, { dns: ['elsewhere.example'] }), intermediate]],
    [
      'untrusted_root',
      () => {
        const rogue = makeRoot({ cn: 'Rogue Root' });
        const rogueInt = makeIntermediate(rogue);
        return [makeLeaf(rogueInt, { dns: [HOST] }), rogueInt, rogue];
      },
    ],
    ['incomplete_chain', () => [makeLeaf(intermediate, { dns: [HOST] })]],
    ['missing_server_auth_eku', () => [makeLeaf(intermediate, { dns: [HOST], eku: ['clientAuth'] }), intermediate]],
    ['weak_rsa_key', () => [makeLeaf(intermediate, { dns: [HOST], key: 'rsa1024' }), intermediate]],
    ['weak_signature_sha1', () => [makeLeaf(intermediate, { dns: [HOST], hash: 'sha1' }), intermediate]],
  ])('%s', async (reason, build) => {
    // Security level 0 so that OpenSSL lets the origin load a SHA-1 certificate at all.
    const origin = await httpsOrigin(build(), { ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(await failureOf(origin)).toBe(reason);
  });

  it('closes the upstream connection when validation fails', async () => {
    const leaf = issueCert({ cn: HOST, dns: [HOST] });
    const server = tls.createServer({ key: leaf.keyPem, cert: leaf.pem });
    const closedByUs = new Promise<void>((resolve) => server.on('connection', (s: net.Socket) => s.on('close', () => resolve())));
    const result = await connect(await listen(server));
    await closedByUs;
    expect(result.ok).toBe(false);
  });
});

describe('revocation', () => {
  let responder: OcspResponder;
  let revoked: TestCert;

  beforeAll(async () => {
    const serial = randomSerialHex();
    responder = await startOcspResponder({ ca: intermediate, entries: [{ serialHex: serial, status: 'R', reason: 'keyCompromise' }] });
    closers.push(() => responder.stop());
    revoked = makeLeaf(intermediate, { dns: [HOST], ocspUrl: responder.url, serialHex: serial });
  });

  it('refuses a leaf its responder reports revoked', async () => {
    expect(await failureOf(await httpsOrigin([revoked, intermediate]))).toBe('revoked');
  });

  it('refuses a leaf whose server staples a revoked response, without asking the responder', async () => {
    const res = await httpFetch({ url: responder.url, method: 'POST', body: encodeOcspRequest(certIdFor(revoked.cert, intermediate.cert)), contentType: 'application/ocsp-request', timeoutMs: 3_000, maxBytes: 65_536 });
    if (!res.ok) throw new Error(res.detail);
    const server = https.createServer({ key: revoked.keyPem, cert: revoked.pem + intermediate.pem });
    server.on('OCSPRequest', (_cert: Buffer, _issuer: Buffer, cb: (err: Error | null, resp: Buffer) => void) => cb(null, res.body));
    const port = await listen(server);
    const noFetch = async (): Promise<never> => {
      throw new Error('responder must not be asked');
    };
    expect(await failureOf(port, { fetch: noFetch })).toBe('revoked');
  });

  it('in hard mode refuses a leaf whose responder is unreachable', async () => {
    const leaf = makeLeaf(intermediate, { dns: [HOST], ocspUrl: 'http://127.0.0.1:1/' });
    expect(await failureOf(await httpsOrigin([leaf, intermediate]), { revocation: 'hard' })).toBe('revocation_unknown');
  });

  it('in soft mode lets it through and reports why', async () => {
    const leaf = makeLeaf(intermediate, { dns: [HOST], ocspUrl: 'http://127.0.0.1:1/' });
    const notes: string[] = [];
    const outcome = await failureOf(await httpsOrigin([leaf, intermediate]), { onSoftFail: (d) => notes.push(d) });
    expect({ outcome, noted: notes.length }).toEqual({ outcome: 'ok', noted: 1 });
  });
});

describe('transport failures', () => {
  it('refuses a server that only speaks TLS 1.0 as protocol_too_old (RFC 8996)', async () => {
    const leaf = makeLeaf(intermediate, { dns: [HOST], key: 'rsa2048' });
    const server = tls.createServer({ key: leaf.keyPem, cert: leaf.pem + intermediate.pem, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
    const port = await listen(server);
    // Precondition, so the test cannot pass vacuously: this server really completes TLS 1.0.
    const legacy = await new Promise<string | null>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false }, () => {
        resolve(s.getProtocol());
        s.destroy();
      });
      s.on('error', () => resolve(null));
    });
    expect(legacy).toBe('TLSv1');
    expect(await failureOf(port)).toBe('protocol_too_old');
  });

  it('reports connect_failed when nothing listens', async () => {
    const free = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    expect(await failureOf(free)).toBe('connect_failed');
  });

  it('reports tls_handshake_failed when the peer does not speak TLS', async () => {
    const port = await listen(net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    expect(await failureOf(port)).toBe('tls_handshake_failed');
  });

  it('gives up at the deadline when the server never answers the handshake', async () => {
    const port = await listen(net.createServer());
    expect(await failureOf(port, { timeoutMs: 200 })).toBe('timeout');
  });
});
