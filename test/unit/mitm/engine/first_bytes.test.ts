// The first bytes of a flow, fed to the engine's core segment by segment on
// a fake clock: a ClientHello in any segmentation, a malformed one, a client
// that sends nothing, and traffic on an inspected port that is not TLS. By
// default that is blocked (otherwise port 443 is an uninspected tunnel for
// any protocol) and logged as `non_tls` with a protocol guess, never the
// bytes; with nonTls 'allow' it is relayed untouched. A server that speaks
// first (SSH, SMTP) is recognised as soon as it speaks, not at the
// ClientHello deadline.

import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { GUESS_WAIT_MS } from '../../../../mitm/engine';
import { MAX_GUESS_BYTES } from '../../../../mitm/engine/first_bytes';
import { removeTempDirs } from '../ca_helpers';
import { FlowUnderTest, type Pki, T0, coreOf, helloBytes, makePki } from './machine';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(removeTempDirs);

const SSH_GREETING = Buffer.from('SSH-2.0-OpenSSH_9.6\r\n');

describe('the ClientHello', () => {
  test('read one byte at a time, it is the same ClientHello: reading stops and the upstream handshake starts with its SNI and ALPN', async () => {
    const hello = await helloBytes('site.test', { ALPNProtocols: ['h2', 'http/1.1'] });
    const f = new FlowUnderTest(coreOf(pki));
    expect(f.commands).toEqual([{ type: 'read', on: true }, { type: 'arm', timer: 'client_hello', at: T0 + 10_000 }]);
    for (const b of hello.subarray(0, -1)) expect(f.client(Buffer.from([b]))).toEqual([]);
    expect(f.client(hello.subarray(-1))).toEqual([
      { type: 'read', on: false }, { type: 'disarm', timer: 'client_hello' }, { type: 'disarm', timer: 'guess' },
      { type: 'start_upstream_tls', servername: 'site.test', alpn: ['h2', 'http/1.1'] },
    ]);
  });

  test('a malformed ClientHello closes both sides and records the parser reason', () => {
    // A handshake record whose ClientHello declares cipher_suites of odd length.
    const body = Buffer.concat([Buffer.from([0x03, 0x03]), Buffer.alloc(32), Buffer.from([0, 0x00, 0x03, 0x13, 0x01, 0x13, 0x01, 0x00])]);
    const hs = Buffer.concat([Buffer.from([1, 0, 0, body.length]), body]);
    const f = new FlowUnderTest(coreOf(pki));
    f.client(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0, hs.length]), hs]));
    expect(f.destroyed).toEqual(['client', 'server']);
    expect(f.ended).toMatchObject({ result: 'client_hello_failed', reason: 'bad_cipher_suites_length', undecrypted: 'protocol-error' });
    expect(f.core.counters.values['client_hello.bad_cipher_suites_length']).toBe(1);
  });

  test('a client that sends nothing is closed at the ClientHello deadline, not before', () => {
    const f = new FlowUnderTest(coreOf(pki, { timeouts: { clientHelloMs: 200 } }));
    f.advance(199);
    expect(f.records()).toEqual([]);
    f.advance(1);
    expect(f.destroyed).toEqual(['client', 'server']);
    expect(f.ended).toMatchObject({ result: 'client_hello_failed', reason: 'client_hello_timeout', durationMs: 200 });
  });

  test('a client whose stream is gone before a ClientHello ends the flow at once, both sides closed', () => {
    const f = new FlowUnderTest(coreOf(pki));
    f.feed({ type: 'client_close' });
    expect(f.destroyed).toEqual(['client', 'server']);
    expect(f.ended).toMatchObject({ result: 'client_hello_failed', reason: 'client_closed' });
  });

  test('a client FIN in the middle of a ClientHello ends the flow as a protocol error', async () => {
    const hello = await helloBytes('site.test');
    const f = new FlowUnderTest(coreOf(pki));
    f.client(hello.subarray(0, 20));
    f.feed({ type: 'client_end' });
    expect(f.ended).toMatchObject({ result: 'client_hello_failed', reason: 'eof_before_client_hello' });
  });
});

describe('not TLS, blocked by default', () => {
  test('plain HTTP to port 443 is blocked: nothing goes upstream, and the record says "http" without a byte of the request', () => {
    const f = new FlowUnderTest(coreOf(pki));
    const secret = `GET /exfil?token=${randomBytes(8).toString('hex')} HTTP/1.1\r\nHost: x\r\n\r\n`;
    f.client(Buffer.from(secret));
    expect(f.ended).toMatchObject({ mode: 'non_tls', result: 'non_tls_blocked', guess: 'http', undecrypted: 'non-tls' });
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'http', from: 'client', outcome: 'block', dst: '203.0.113.7:443' })]);
    expect(JSON.stringify(f.commands)).not.toContain('exfil');
    expect(f.of('write')).toEqual([]);
    expect(f.of('relay')).toEqual([]);
    expect(f.destroyed).toEqual(['client', 'server']);
    expect(f.core.counters.values['non_tls.block.http']).toBe(1);
  });

  test('an SSH client tunnelled to port 443 is blocked and guessed as ssh', () => {
    const f = new FlowUnderTest(coreOf(pki));
    f.client(SSH_GREETING);
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', from: 'client', outcome: 'block' })]);
    expect(f.of('write')).toEqual([]);
  });

  test('a guess does not depend on segmentation: "SS", then "H-2.0..." is still ssh', () => {
    const f = new FlowUnderTest(coreOf(pki));
    f.client(SSH_GREETING.subarray(0, 2));
    expect(f.records()).toEqual([]);
    f.advance(50);
    f.client(SSH_GREETING.subarray(2));
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh' })]);
  });

  test(`a guess still open waits ${GUESS_WAIT_MS} ms for more bytes, then is made with what is there`, () => {
    const f = new FlowUnderTest(coreOf(pki, { timeouts: { clientHelloMs: 120_000 } }));
    // A server's first bytes prove the flow is not TLS; "SS" may still become an SSH greeting.
    f.feed({ type: 'server_data', data: Buffer.from('SS') });
    expect(f.armedAt('guess')).toBe(T0 + GUESS_WAIT_MS);
    f.advance(GUESS_WAIT_MS - 1);
    expect(f.records()).toEqual([]);
    f.advance(1);
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ from: 'server', outcome: 'block' })]);
  });

  test.each([
    { greeting: SSH_GREETING.toString(), guess: 'ssh' },
    { greeting: '220 mail.example.test ESMTP Postfix\r\n', guess: 'smtp' },
  ])('a server that speaks first ($guess) while the client waits is recognised when it speaks, not at the ClientHello deadline, and blocked', ({ greeting, guess }) => {
    const f = new FlowUnderTest(coreOf(pki, { timeouts: { clientHelloMs: 120_000 } }));
    f.advance(10);
    f.feed({ type: 'server_data', data: Buffer.from(greeting) });
    expect(f.ended).toMatchObject({ mode: 'non_tls', result: 'non_tls_blocked', guess, durationMs: 10 });
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess, from: 'server', outcome: 'block' })]);
    // Nothing of the greeting reached the client.
    expect(f.of('write')).toEqual([]);
  });
});

describe('not TLS, with nonTls "allow"', () => {
  test('arbitrary bytes are relayed untouched: what was read goes upstream first, the first read included', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow' }));
    const payload = Buffer.concat([SSH_GREETING, randomBytes(1000)]);
    f.client(payload.subarray(0, 3), payload.subarray(3));
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', outcome: 'allow' })]);
    expect(f.of('write')).toEqual([{ type: 'write', side: 'server', data: payload }]);
    expect(f.last('relay')).toEqual({ type: 'relay', layer: 'raw', tap: null });
    f.relayEnd({ fromClient: 5000, fromServer: 3 });
    expect(f.ended).toMatchObject({ mode: 'non_tls', result: 'closed', bytesFromClient: 5000 + payload.length, bytesFromServer: 3 });
  });

  test('plain HTTP is relayed and recorded as allowed', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow' }));
    f.client(Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'http', outcome: 'allow' })]);
    expect(f.last('relay').layer).toBe('raw');
  });

  test('a server-speaks-first protocol works: its greeting reaches the client first, then both directions flow', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow', timeouts: { clientHelloMs: 120_000 } }));
    f.feed({ type: 'server_data', data: SSH_GREETING });
    expect(f.of('write')).toEqual([{ type: 'write', side: 'client', data: SSH_GREETING }]);
    expect(f.last('relay').layer).toBe('raw');
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ guess: 'ssh', from: 'server', outcome: 'allow' })]);
    f.relayEnd({ fromServer: 10 });
    expect(f.ended).toMatchObject({ bytesFromServer: 10 + SSH_GREETING.length, bytesFromClient: 0 });
  });
});

describe('what the first bytes hold', () => {
  test('while a guess waits on one side, the other side is not buffered without bound: past the limit the guess is made at once, and nothing read is lost', () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow', timeouts: { clientHelloMs: 120_000 } }));
    // Not TLS, and still maybe a BitTorrent handshake: the client's guess waits for more.
    const opening = Buffer.from('\x13BitTorrent', 'latin1');
    f.client(opening);
    expect(f.armedAt('guess')).toBe(T0 + GUESS_WAIT_MS);
    // Meanwhile the server streams (the stream is read in flowing mode).
    const fromServer = randomBytes(MAX_GUESS_BYTES + 1000);
    const parts = [fromServer.subarray(0, 30_000), fromServer.subarray(30_000, MAX_GUESS_BYTES - 1), fromServer.subarray(MAX_GUESS_BYTES - 1)];
    for (const data of parts.slice(0, 2)) f.feed({ type: 'server_data', data });
    expect(f.records('non_tls')).toEqual([]);
    f.feed({ type: 'server_data', data: parts[2] });
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ from: 'client', outcome: 'allow' })]);
    expect(f.of('write')).toEqual([{ type: 'write', side: 'server', data: opening }, { type: 'write', side: 'client', data: fromServer }]);
  });

  test('the same bound holds for the client while the server is the one guessed', () => {
    const f = new FlowUnderTest(coreOf(pki, { timeouts: { clientHelloMs: 120_000 } }));
    f.feed({ type: 'server_data', data: Buffer.from('SS') });
    expect(f.armedAt('guess')).toBe(T0 + GUESS_WAIT_MS);
    f.client(randomBytes(MAX_GUESS_BYTES - 1));
    expect(f.records('non_tls')).toEqual([]);
    f.client(randomBytes(1));
    expect(f.records('non_tls')).toEqual([expect.objectContaining({ from: 'server', outcome: 'block' })]);
  });

  test('once relayed, the bytes read before the decision are let go: a flow may last hours', async () => {
    const f = new FlowUnderTest(coreOf(pki, { nonTls: 'allow' }));
    // Over 4 KiB, so the reader's buffer is its own memory rather than a slice of Node's shared pool.
    const payload = Buffer.concat([SSH_GREETING, randomBytes(6000)]);
    f.client(payload);
    const written = f.of('write');
    expect(written).toEqual([{ type: 'write', side: 'server', data: payload }]);
    const held = new WeakRef((written[0] as { data: Buffer }).data.buffer);
    written.length = 0;
    f.commands.length = 0;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(held.deref()).toBeUndefined();
    // The relay still counts them.
    f.relayEnd({ fromClient: 10 });
    expect(f.ended).toMatchObject({ bytesFromClient: 10 + payload.length });
  });
});
