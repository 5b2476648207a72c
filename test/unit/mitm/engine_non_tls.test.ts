// Traffic on an inspected port that is not TLS: by default it is blocked
// (otherwise port 443 is an uninspected tunnel for any protocol) and logged
// as `non_tls` with a protocol guess, never the bytes; with nonTls 'allow'
// it is relayed untouched. A server that speaks first (SSH, SMTP) is
// recognised as soon as it speaks, not at the ClientHello deadline.

import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { removeTempDirs } from './ca_helpers';
import { EngineUnderTest, Pki, get, makePki, originCert, withEngine } from './engine_harness';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

/** Long enough that a test ending is proof the flow did not wait for it. */
const NEVER_MS = 120_000;
const SSH_GREETING = 'SSH-2.0-OpenSSH_9.6\r\n';

/** Connects, writes `bytes` (if any), collects what comes back until the engine closes. */
function rawExchange(port: number, bytes: Buffer | null, closeAfter?: (got: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const c = net.connect({ host: '127.0.0.1', port }, () => {
      if (bytes) c.write(bytes);
    });
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (closeAfter?.(got)) c.end();
    });
    c.on('error', () => resolve(got));
    c.on('close', () => resolve(got));
  });
}

/** An origin that counts what reaches it; speaks first when given a greeting. */
function countingOrigin(greeting?: string): { server: net.Server; bytes: () => number } {
  let n = 0;
  const server = net.createServer((s) => {
    if (greeting) s.write(greeting);
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('error', () => s.destroy());
  });
  return { server, bytes: () => n };
}

/** A TLS flow through the same engine still works: blocking non-TLS does not break inspection. */
async function inspectedGetWorks(eut: EngineUnderTest, originPort: number): Promise<void> {
  eut.originPort = originPort;
  const res = await get(eut.port, '/', { servername: 'after.test', ca: pki.ca.certPem });
  expect(res.body.toString()).toBe('inspected');
}

async function withTlsOrigin<T>(run: (port: number) => Promise<T>): Promise<T> {
  const origin = https.createServer(originCert(pki, 'after.test'), (_q, s) => s.end('inspected'));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  try {
    return await run((origin.address() as net.AddressInfo).port);
  } finally {
    origin.close();
  }
}

describe('blocked by default', () => {
  test('plain HTTP to port 443 is blocked: nothing reaches the origin, and the record says "http" without a byte of the request', async () => {
    const origin = countingOrigin();
    await withTlsOrigin((tlsPort) => withEngine(pki, origin.server, async (eut) => {
      const secret = `GET /exfil?token=${randomBytes(8).toString('hex')} HTTP/1.1\r\nHost: x\r\n\r\n`;
      await rawExchange(eut.port, Buffer.from(secret));
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ mode: 'non_tls', result: 'non_tls_blocked', guess: 'http' });
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'http', from: 'client', outcome: 'block', user: 'alice' })]);
      expect(JSON.stringify(eut.records.all)).not.toContain('exfil');
      expect(origin.bytes()).toBe(0);
      await inspectedGetWorks(eut, tlsPort);
    }));
  });

  test('an SSH client tunnelled to port 443 is blocked and guessed as ssh', async () => {
    const origin = countingOrigin();
    await withEngine(pki, origin.server, async (eut) => {
      await rawExchange(eut.port, Buffer.from(SSH_GREETING));
      await eut.ended(1);
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', from: 'client', outcome: 'block' })]);
      expect(origin.bytes()).toBe(0);
    });
  });

  test('a guess does not depend on segmentation: "SS", then "H-2.0..." is still ssh', async () => {
    const origin = countingOrigin();
    await withEngine(pki, origin.server, async (eut) => {
      await new Promise<void>((resolve) => {
        const c = net.connect({ host: '127.0.0.1', port: eut.port }, () => {
          c.write('SS');
          setTimeout(() => c.write(SSH_GREETING.slice(2)), 50);
        });
        c.on('error', () => resolve());
        c.on('close', () => resolve());
      });
      await eut.ended(1);
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh' })]);
    });
  });

  test.each([
    { greeting: SSH_GREETING, guess: 'ssh' },
    { greeting: '220 mail.example.test ESMTP Postfix\r\n', guess: 'smtp' },
  ])('a server that speaks first ($guess) while the client waits is recognised when it speaks, not at the ClientHello deadline, and blocked', async ({ greeting, guess }) => {
    const origin = countingOrigin(greeting);
    await withEngine(pki, origin.server, async (eut) => {
      const got = await rawExchange(eut.port, null);
      const [end] = await eut.ended(1);
      expect(end).toMatchObject({ mode: 'non_tls', result: 'non_tls_blocked', guess });
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess, from: 'server', outcome: 'block' })]);
      expect(got).toBe('');
    }, { timeouts: { clientHelloMs: NEVER_MS } });
  });
});

describe('with nonTls "allow"', () => {
  test('plain HTTP is relayed untouched and recorded as allowed', async () => {
    const origin = http.createServer((req, res) => res.end(`plain ${req.method} ${req.url}`));
    await withEngine(pki, origin, async (eut) => {
      const body = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: eut.port, path: '/x', agent: false }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        }).on('error', reject);
      });
      expect(body).toBe('plain GET /x');
      const [end] = await eut.ended(1);
      expect(end.mode).toBe('non_tls');
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'http', outcome: 'allow' })]);
    }, { nonTls: 'allow' });
  });

  test('arbitrary non-TLS bytes reach the origin exactly as sent, the first read included', async () => {
    const received: Buffer[] = [];
    const origin = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', (c: Buffer) => received.push(c));
      s.on('end', () => s.end('bye'));
    });
    await withEngine(pki, origin, async (eut) => {
      const payload = Buffer.concat([Buffer.from(SSH_GREETING), randomBytes(100_000)]);
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ host: '127.0.0.1', port: eut.port, allowHalfOpen: true }, () => c.end(payload));
        let s = '';
        c.on('data', (d: Buffer) => (s += d.toString()));
        c.on('end', () => resolve(s));
        c.on('error', reject);
      });
      expect(reply).toBe('bye');
      expect(Buffer.concat(received).equals(payload)).toBe(true);
    }, { nonTls: 'allow' });
  });

  test('a server-speaks-first protocol works: the greeting reaches the client, then both directions flow', async () => {
    const origin = net.createServer((s) => {
      s.write(SSH_GREETING);
      s.on('data', (c: Buffer) => s.write(`echo:${c.toString()}`));
    });
    await withEngine(pki, origin, async (eut) => {
      let sent = false;
      const got = await new Promise<string>((resolve) => {
        let buf = '';
        const c = net.connect({ host: '127.0.0.1', port: eut.port });
        c.on('data', (d: Buffer) => {
          buf += d.toString();
          if (!sent && buf === SSH_GREETING) {
            sent = true;
            c.write('hello');
          }
          if (buf.endsWith('echo:hello')) c.end();
        });
        c.on('close', () => resolve(buf));
      });
      expect(got).toBe(`${SSH_GREETING}echo:hello`);
      await eut.ended(1);
      expect(eut.records.ofType('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', from: 'server', outcome: 'allow' })]);
    }, { nonTls: 'allow', timeouts: { clientHelloMs: NEVER_MS } });
  });
});
