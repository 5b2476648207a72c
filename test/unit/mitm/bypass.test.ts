// The verified-bypass gate's verdict cache, on a fake clock and a fake
// probe: one probe per (address, port, name) shared by concurrent flows,
// positive verdicts kept for their TTL but never past the leaf's notAfter,
// negative ones for a shorter TTL, bounded in size.

import { BypassVerifier, type BypassTarget, type ProbeResult } from '../../../mitm/bypass';

const target = (over: Partial<BypassTarget> = {}): BypassTarget => ({ address: '192.0.2.10', port: 443, name: 'bank.test', alpn: [], ...over });

function fakeProbe(result: (t: BypassTarget) => ProbeResult): { probe: (t: BypassTarget) => Promise<ProbeResult>; calls: BypassTarget[]; release: () => void } {
  const calls: BypassTarget[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  return {
    calls,
    release: () => release(),
    probe: async (t) => {
      calls.push(t);
      await gate;
      return result(t);
    },
  };
}

const GOOD: ProbeResult = { ok: true, notAfter: 10_000_000 };
const BAD: ProbeResult = { ok: false, reason: 'self_signed', detail: 'self-signed' };

test('concurrent flows to one destination share one probe', async () => {
  const p = fakeProbe(() => GOOD);
  const v = new BypassVerifier({ probe: p.probe, now: () => 0 });
  const all = Promise.all([v.verify(target()), v.verify(target()), v.verify(target({ name: 'BANK.test' }))]);
  p.release();
  expect((await all).map((r) => r.ok)).toEqual([true, true, true]);
  expect(p.calls).toHaveLength(1);
});

test('the verdict is per (address, port, name): another address or port is probed on its own', async () => {
  const p = fakeProbe((t) => (t.address === '192.0.2.10' ? GOOD : BAD));
  p.release();
  const v = new BypassVerifier({ probe: p.probe, now: () => 0 });
  expect((await v.verify(target())).ok).toBe(true);
  expect(await v.verify(target({ address: '198.51.100.66' }))).toMatchObject({ ok: false, reason: 'self_signed', cached: false });
  expect((await v.verify(target({ port: 8443 }))).ok).toBe(true);
  expect(p.calls).toHaveLength(3);
});

test('a positive verdict is reused until its TTL, then probed again', async () => {
  let now = 0;
  const p = fakeProbe(() => GOOD);
  p.release();
  const v = new BypassVerifier({ probe: p.probe, now: () => now, positiveTtlMs: 1000 });
  expect(await v.verify(target())).toMatchObject({ ok: true, cached: false });
  now = 999;
  expect(await v.verify(target())).toMatchObject({ ok: true, cached: true });
  now = 1000;
  expect(await v.verify(target())).toMatchObject({ ok: true, cached: false });
  expect(p.calls).toHaveLength(2);
});

test('a positive verdict never outlives the certificate that earned it', async () => {
  let now = 0;
  const p = fakeProbe(() => ({ ok: true, notAfter: 500 }));
  p.release();
  const v = new BypassVerifier({ probe: p.probe, now: () => now, positiveTtlMs: 60_000 });
  await v.verify(target());
  now = 500;
  expect((await v.verify(target())).cached).toBe(false);
});

test('a negative verdict is cached for the negative TTL', async () => {
  let now = 0;
  const p = fakeProbe(() => BAD);
  p.release();
  const v = new BypassVerifier({ probe: p.probe, now: () => now, negativeTtlMs: 100 });
  await v.verify(target());
  now = 99;
  expect(await v.verify(target())).toMatchObject({ ok: false, cached: true });
  now = 100;
  expect((await v.verify(target())).cached).toBe(false);
});

test('a probe that throws is a refusal, not an exception', async () => {
  const v = new BypassVerifier({ probe: () => Promise.reject(new Error('boom')), now: () => 0 });
  expect(await v.verify(target())).toMatchObject({ ok: false, reason: 'tls_handshake_failed', detail: 'probe failed: boom' });
});

test('the cache is bounded: a client naming endless destinations cannot grow it', async () => {
  const p = fakeProbe(() => BAD);
  p.release();
  const v = new BypassVerifier({ probe: p.probe, now: () => 0, maxEntries: 50 });
  for (let i = 0; i < 500; i++) await v.verify(target({ port: 1000 + i }));
  expect(v.cacheSize).toBe(50);
});
