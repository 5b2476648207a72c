// Handshake messages per source under load: a burst, then a steady rate, per
// IPv4 address or IPv6 /64, with a bounded table of sources.
import { HANDSHAKE_BURST, HANDSHAKES_PER_SECOND, HandshakeRateLimiter, MAX_TRACKED_SOURCES, sourceKey } from '../../../../vpn/protocol/ratelimit';

describe('handshake rate per source', () => {
  test(`a burst of ${HANDSHAKE_BURST}, then ${HANDSHAKES_PER_SECOND} per second`, () => {
    const l = new HandshakeRateLimiter();
    const t = 1_000;
    const taken = Array.from({ length: 8 }, () => l.allow('a', t));
    expect(taken).toEqual([true, true, true, true, true, false, false, false]);
    const gap = 1000 / HANDSHAKES_PER_SECOND;
    expect(l.allow('a', t + gap - 1)).toBe(false);
    expect(l.allow('a', t + gap)).toBe(true);
    expect(l.allow('a', t + gap)).toBe(false);
    // Over a second of steady sending, the rate and no more.
    let n = 0;
    for (let ms = 1; ms <= 1000; ms++) if (l.allow('a', t + gap + ms)) n++;
    expect(n).toBe(HANDSHAKES_PER_SECOND);
  });

  test('sources are independent', () => {
    const l = new HandshakeRateLimiter();
    for (let i = 0; i < HANDSHAKE_BURST; i++) l.allow('a', 0);
    expect(l.allow('a', 0)).toBe(false);
    expect(l.allow('b', 0)).toBe(true);
  });

  test('the table of sources is bounded: idle ones go, and while none is idle a new source waits', () => {
    const l = new HandshakeRateLimiter();
    for (let i = 0; i < MAX_TRACKED_SOURCES; i++) l.allow(`s${i}`, 0);
    expect(l.tracked).toBe(MAX_TRACKED_SOURCES);
    expect(l.allow('late', 10)).toBe(false);
    expect(l.tracked).toBe(MAX_TRACKED_SOURCES);
    // Once their buckets would be full again, the idle sources are forgotten.
    expect(l.allow('late', 1000)).toBe(true);
    expect(l.tracked).toBe(1);
  });

  test('the key: an IPv4 address, the same when IPv4-mapped, and an IPv6 /64', () => {
    expect(sourceKey({ address: '192.0.2.1', port: 1 })).toBe(sourceKey({ address: '192.0.2.1', port: 2 }));
    expect(sourceKey({ address: '::ffff:192.0.2.1', port: 1 })).toBe(sourceKey({ address: '192.0.2.1', port: 1 }));
    expect(sourceKey({ address: '::ffff:192.0.2.1', port: 1 })).not.toBe(sourceKey({ address: '::ffff:192.0.2.2', port: 1 }));
    expect(sourceKey({ address: '2001:db8:1:2::1', port: 1 })).toBe(sourceKey({ address: '2001:db8:1:2:ffff::9', port: 1 }));
    expect(sourceKey({ address: '2001:db8:1:2::1', port: 1 })).not.toBe(sourceKey({ address: '2001:db8:1:3::1', port: 1 }));
    expect(sourceKey({ address: 'fe80::1%eth0', port: 1 })).toBe(sourceKey({ address: 'fe80::2', port: 1 }));
  });
});
