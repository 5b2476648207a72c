import { REJECT_AFTER_MESSAGES } from '../../../../vpn/protocol/constants';
import { REPLAY_WINDOW_SIZE, ReplayFilter } from '../../../../vpn/protocol/replay';

const split = (c: bigint): [number, number] => [Number(c >> 32n), Number(c & 0xffffffffn)];
const accept = (f: ReplayFilter, c: bigint | number): boolean => f.validate(...split(BigInt(c)));

describe('replay window (§5.4.6, RFC 6479)', () => {
  test('the window holds at least 2048 counters', () => {
    expect(REPLAY_WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
  });

  test('accepts each counter once, in order', () => {
    const f = new ReplayFilter();
    for (let c = 0; c < 200; c++) expect(accept(f, c)).toBe(true);
  });

  test('rejects a duplicate (replayed packet)', () => {
    const f = new ReplayFilter();
    expect(accept(f, 5)).toBe(true);
    expect(accept(f, 5)).toBe(false);
    expect(accept(f, 0)).toBe(true);
    expect(accept(f, 0)).toBe(false);
  });

  test('accepts reordered counters inside the window exactly once', () => {
    const f = new ReplayFilter();
    expect(accept(f, 1000)).toBe(true);
    expect(accept(f, 10)).toBe(true);
    expect(accept(f, 999)).toBe(true);
    expect(accept(f, 10)).toBe(false);
    expect(accept(f, 999)).toBe(false);
  });

  test('rejects counters older than the window', () => {
    const f = new ReplayFilter();
    const top = 100_000;
    expect(accept(f, top)).toBe(true);
    expect(accept(f, top - REPLAY_WINDOW_SIZE)).toBe(true);
    expect(accept(f, top - REPLAY_WINDOW_SIZE - 1)).toBe(false);
  });

  test('sliding forward forgets stale bits, so counters that wrap onto reused ring slots are new', () => {
    const f = new ReplayFilter();
    for (let c = 0; c < 5000; c++) expect(accept(f, c)).toBe(true);
    expect(accept(f, 4999 + 4096)).toBe(true); // same ring slot as 4999
    expect(accept(f, 4999 + 4096 - 1)).toBe(true);
  });

  test('a jump across the 32-bit boundary of the counter stays exact', () => {
    const f = new ReplayFilter();
    expect(accept(f, 0xffffffffn)).toBe(true);
    expect(accept(f, 0x100000000n)).toBe(true);
    expect(accept(f, 0xffffffffn)).toBe(false);
    expect(accept(f, 0xfffffffen)).toBe(true);
    expect(accept(f, 0x100000001n)).toBe(true);
  });

  test('rejects counters at or beyond REJECT_AFTER_MESSAGES, accepts the one below', () => {
    const f = new ReplayFilter();
    expect(accept(f, REJECT_AFTER_MESSAGES)).toBe(false);
    expect(accept(f, 2n ** 64n - 1n)).toBe(false);
    expect(accept(f, REJECT_AFTER_MESSAGES - 1n)).toBe(true);
    expect(accept(f, REJECT_AFTER_MESSAGES - 1n)).toBe(false);
  });
});
