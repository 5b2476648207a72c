// The inspection benchmark turns client output into numbers next to Squid's
// and mitmproxy's. A pipeline that passed TLS through instead of inspecting
// it would print a flattering number for work it never did, so the probe's
// verdict and each rule that turns output into a value are pinned here.
import { connsPerSecond, firstVisitExtraMs, markTunnelBound, median, parseProbe } from '../../../../scripts/bench/inspect_parse';

const ORIGIN = 'Bench Public PKI/Bench Public Intermediate';
const probe = (o: object): string => JSON.stringify(o) + '\n';

describe('parseProbe', () => {
  test('a certificate chaining to the pipeline CA with a 200 answer counts as inspected', () => {
    const out = probe({ ok: true, status: 200, authorized: true, authorizationError: null, issuer: 'Acme/Acme Inspection CA' });
    expect(parseProbe(out, ORIGIN)).toEqual({ inspected: true, reason: '' });
  });

  test("the origin's own certificate reaching the client is passthrough, not inspection", () => {
    const out = probe({ ok: true, status: 200, authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', issuer: ORIGIN });
    const r = parseProbe(out, ORIGIN);
    expect(r.inspected).toBe(false);
    expect(r.reason).toContain("the origin's: passed through");
    expect(r.reason).toContain('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  test('a certificate from some other CA (untrusted-upstream CA) is not inspection by the pipeline CA', () => {
    const out = probe({ ok: true, status: 200, authorized: false, authorizationError: 'SELF_SIGNED_CERT_IN_CHAIN', issuer: 'Acme/Untrusted' });
    const r = parseProbe(out, ORIGIN);
    expect(r.inspected).toBe(false);
    expect(r.reason).not.toContain('passed through');
  });

  test('a TLS failure through the pipeline (blocked, reset) is reported with its error', () => {
    const r = parseProbe(probe({ ok: false, error: 'socket hang up' }), ORIGIN);
    expect(r).toEqual({ inspected: false, reason: 'not inspected: TLS through the pipeline failed (socket hang up)' });
  });

  test('an inspected flow answering an error status is not a working pipeline', () => {
    const r = parseProbe(probe({ ok: true, status: 503, authorized: true, issuer: 'Acme/CA' }), ORIGIN);
    expect(r.inspected).toBe(false);
    expect(r.reason).toContain('HTTP 503');
  });

  test('no output at all (client killed by its time limit) is a failure', () => {
    expect(parseProbe('', ORIGIN).inspected).toBe(false);
  });
});

describe('connsPerSecond', () => {
  test('completed requests per second of the measured window', () => {
    expect(connsPerSecond(probe({ done: 500, failed: 0, ms: 2000, firstError: null }))).toEqual({ ok: true, value: 250, note: '500 in 2.0 s' });
  });

  test('failed requests do not count toward the rate and are noted with the first error', () => {
    const r = connsPerSecond(probe({ done: 100, failed: 3, ms: 1000, firstError: 'ECONNRESET' }));
    expect(r).toEqual({ ok: true, value: 100, note: '100 in 1.0 s, 3 failed: ECONNRESET' });
  });

  test('a run where nothing completed is a failure, not a rate of zero', () => {
    expect(connsPerSecond(probe({ done: 0, failed: 8, ms: 5000, firstError: 'timeout' }))).toEqual({ ok: false, reason: 'no request completed (timeout)' });
  });

  test('a client that failed before measuring (warm-up refused) reports its error', () => {
    expect(connsPerSecond(probe({ ok: false, error: 'self-signed certificate' }))).toEqual({ ok: false, reason: 'self-signed certificate' });
  });
});

describe('firstVisitExtraMs', () => {
  test('per name, first TTFB minus the faster repeat; the median over names', () => {
    const samples = [
      { name: 'a', firstMs: 10, warmMs: [7, 6] },
      { name: 'b', firstMs: 12, warmMs: [9, 10] },
      { name: 'c', firstMs: 30, warmMs: [8, 9] },
    ];
    expect(firstVisitExtraMs([probe({ samples, firstError: null })])).toEqual({ ok: true, value: 4, note: 'median of 3 names' });
  });

  test('the names of every batch count together', () => {
    const batch1 = probe({ samples: [{ name: 'a', firstMs: 10, warmMs: [7, 6] }], firstError: null });
    const batch2 = probe({ samples: [{ name: 'b', firstMs: 12, warmMs: [9, 10] }, { name: 'c', firstMs: 30, warmMs: [8, 9] }], firstError: null });
    expect(firstVisitExtraMs([batch1, batch2])).toEqual({ ok: true, value: 4, note: 'median of 3 names' });
  });

  test('a first visit faster than its repeats gives a negative value rather than being dropped', () => {
    const r = firstVisitExtraMs([probe({ samples: [{ name: 'a', firstMs: 5, warmMs: [6, 7] }] })]);
    expect(r).toEqual({ ok: true, value: -1, note: 'median of 1 names' });
  });

  test('no name answered is a failure carrying the first error', () => {
    expect(firstVisitExtraMs([probe({ samples: [], firstError: null }), probe({ samples: [], firstError: 'certificate has expired' })])).toEqual({ ok: false, reason: 'no name answered (certificate has expired)' });
  });
});

describe('median', () => {
  test('middle value of an odd count, mean of the two middle values of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('markTunnelBound', () => {
  const uninspected = { ok: true as const, value: 1000 };

  test('an inspected rate close to the uninspected one is marked tunnel-bound: its ratio compares tunnels, not proxies', () => {
    expect(markTunnelBound({ ok: true, value: 900, note: 'x' }, uninspected)).toEqual({ ok: true, value: 900, note: 'x; tunnel-bound: 90% of the uninspected rate' });
  });

  test('a rate clearly below the uninspected one is left as measured', () => {
    expect(markTunnelBound({ ok: true, value: 500 }, uninspected)).toEqual({ ok: true, value: 500 });
  });

  test('without an uninspected reference nothing is claimed', () => {
    expect(markTunnelBound({ ok: true, value: 900 }, { ok: false, reason: 'failed' })).toEqual({ ok: true, value: 900 });
  });
});
