// The verified-bypass gate: its verdict cache, on a fake clock (positive
// verdicts kept for their TTL but never past the leaf's notAfter, negative
// ones for a shorter TTL, per (address, port, name), bounded in size), and
// its prober on a fake probe (one probe per destination shared by
// concurrent flows; a probe that throws is a refusal).

import { BypassVerifier, type BypassTarget, type ProbeResult } from '../../../mitm/bypass';
import { BypassProber } from '../../../mitm/bypass_probe';
import { Counters } from '../../../netstack';

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

describe('the verdict cache', () => {
  test('a verdict is per (address, port, name): another address or port is not answered by it; the name is case-insensitive', () => {
    const v = new BypassVerifier();
    v.store(target(), GOOD, 0);
    expect(v.cached(target({ name: 'BANK.test' }), 0)).toEqual(GOOD);
    expect(v.cached(target({ address: '198.51.100.66' }), 0)).toBeUndefined();
    expect(v.cached(target({ port: 8443 }), 0)).toBeUndefined();
  });

  test('a positive verdict is reused until its TTL, then the destination must be probed again', () => {
    const v = new BypassVerifier({ positiveTtlMs: 1000 });
    v.store(target(), GOOD, 0);
    expect(v.cached(target(), 999)).toEqual(GOOD);
    expect(v.cached(target(), 1000)).toBeUndefined();
  });

  test('a positive verdict never outlives the certificate that earned it', () => {
    const v = new BypassVerifier({ positiveTtlMs: 60_000 });
    v.store(target(), { ok: true, notAfter: 500 }, 0);
    expect(v.cached(target(), 499)).toBeDefined();
    expect(v.cached(target(), 500)).toBeUndefined();
  });

  test('a negative verdict is cached for the negative TTL', () => {
    const v = new BypassVerifier({ negativeTtlMs: 100 });
    v.store(target(), BAD, 0);
    expect(v.cached(target(), 99)).toEqual(BAD);
    expect(v.cached(target(), 100)).toBeUndefined();
  });

  test('the cache is bounded: a client naming endless destinations cannot grow it', () => {
    const v = new BypassVerifier({ maxEntries: 50 });
    for (let i = 0; i < 500; i++) v.store(target({ port: 1000 + i }), BAD, 0);
    expect(v.cacheSize).toBe(50);
  });
});

describe('the prober', () => {
  test('concurrent flows to one destination share one probe, counted once', async () => {
    const p = fakeProbe(() => GOOD);
    const counters = new Counters();
    const prober = new BypassProber(p.probe, counters);
    const all = Promise.all([prober.probe(target()), prober.probe(target()), prober.probe(target({ name: 'BANK.test' }))]);
    p.release();
    expect((await all).map((r) => r.ok)).toEqual([true, true, true]);
    expect(p.calls).toHaveLength(1);
    expect(counters.values['bypass.probes']).toBe(1);
  });

  test('another address or port is probed on its own', async () => {
    const p = fakeProbe((t) => (t.address === '192.0.2.10' ? GOOD : BAD));
    p.release();
    const prober = new BypassProber(p.probe, new Counters());
    expect((await prober.probe(target())).ok).toBe(true);
    expect(await prober.probe(target({ address: '198.51.100.66' }))).toMatchObject({ ok: false, reason: 'self_signed' });
    expect((await prober.probe(target({ port: 8443 }))).ok).toBe(true);
    expect(p.calls).toHaveLength(3);
  });

  test('a finished probe is not shared: the next one probes again', async () => {
    const p = fakeProbe(() => GOOD);
    p.release();
    const prober = new BypassProber(p.probe, new Counters());
    await prober.probe(target());
    await prober.probe(target());
    expect(p.calls).toHaveLength(2);
  });

  test('a probe that throws is a refusal, not an exception', async () => {
    const prober = new BypassProber(() => Promise.reject(new Error('boom')), new Counters());
    expect(await prober.probe(target())).toMatchObject({ ok: false, reason: 'tls_handshake_failed', detail: 'probe failed: boom' });
  });
});
