// The flows' emit path: segments carved from a PacketArena (uninitialised
// memory) must be byte for byte what a zeroed buffer gives, and a packet
// must stay intact however many are carved after it, until the owner
// recycles the arena (then its slabs are carved again, up to a bound).
import { ACK, ARENA_KEPT_SLABS, ARENA_SLAB_BYTES, buildTcpPacket, IpAddress, isWireError, PacketArena, parseIpPacket, PSH, SYN, TcpRepr, TcpView, verifyUpperLayerChecksum, type TcpOptions } from '../../../../netstack/wire';

const V4: [IpAddress, IpAddress] = [IpAddress.parse('10.210.2.2'), IpAddress.parse('10.77.0.2')];
const V6: [IpAddress, IpAddress] = [IpAddress.parse('fd77:1:2::1'), IpAddress.parse('fd77:1:2::2')];

/** An arena whose next slab is filled with garbage, as reused heap memory would be. */
function dirtyArena(): PacketArena {
  const arena = new PacketArena();
  const first = arena.take(8);
  Buffer.from(first.buffer, first.byteOffset, ARENA_SLAB_BYTES).fill(0xa5);
  return arena;
}

function segment(options: TcpOptions, payload: Buffer, flags = PSH | ACK): TcpRepr {
  return new TcpRepr({ srcPort: 8080, dstPort: 40000, seq: 0xfffffff0, ack: 12345, flags, window: 502, urgent: 0, options, payload });
}

const OPTION_SETS: Array<[string, TcpOptions, number]> = [
  ['no options', {}, ACK],
  ['timestamps', { timestamp: { value: 1, echo: 0xffffffff } }, ACK],
  ['timestamps and three SACK blocks', { timestamp: { value: 7, echo: 9 }, sack: [[100, 200], [300, 400], [500, 600]] }, ACK],
  ['four SACK blocks without timestamps', { sack: [[1, 2], [3, 4], [5, 6], [7, 8]] }, ACK],
  ['the SYN-ACK options (MSS, window scale, SACK permitted, timestamps)', { mss: 1380, windowScale: 7, sackPermitted: true, timestamp: { value: 5, echo: 6 } }, SYN | ACK],
  ['MSS and SACK permitted without timestamps', { mss: 1380, sackPermitted: true }, SYN | ACK],
];

describe('buildTcpPacket with an arena (the flows emit path)', () => {
  for (const [name, options, flags] of OPTION_SETS) {
    for (const [family, [src, dst]] of [['IPv4', V4], ['IPv6', V6]] as const) {
      test(`${family}, ${name}: every byte written over dirty memory, checksums valid`, () => {
        const repr = segment(options, flags & SYN ? Buffer.alloc(0) : Buffer.from('payload of odd length'), flags);
        const fromArena = buildTcpPacket(src, dst, repr, dirtyArena());
        expect(fromArena).toEqual(buildTcpPacket(src, dst, repr));
        const p = parseIpPacket(fromArena);
        if (isWireError(p)) throw new Error(p.reason);
        expect(verifyUpperLayerChecksum(p)).toBe(true);
        const tcp = TcpView.parse(p.payload);
        if (isWireError(tcp)) throw new Error(tcp.reason);
        expect(TcpRepr.parse(tcp)).toEqual(repr);
      });
    }
  }

  test('a packet stays intact while later packets are carved, across slabs', () => {
    const arena = dirtyArena();
    const full = segment({ timestamp: { value: 1, echo: 2 } }, Buffer.alloc(1368, 0x42));
    const first = buildTcpPacket(V4[0], V4[1], full, arena);
    const copy = Buffer.from(first);
    // More than a slab's worth of segments after it.
    for (let i = 0; i < Math.ceil((2 * ARENA_SLAB_BYTES) / first.length); i++) buildTcpPacket(V4[0], V4[1], segment({}, Buffer.alloc(1368, i)), arena);
    expect(first).toEqual(copy);
  });

  test('a packet larger than a quarter slab gets its own buffer', () => {
    const arena = new PacketArena();
    const big = arena.take(ARENA_SLAB_BYTES / 2);
    expect(big.length).toBe(ARENA_SLAB_BYTES / 2);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(ARENA_SLAB_BYTES / 2);
  });

  test('recycle(): the next packets are carved from the same slabs again, from the start', () => {
    const arena = new PacketArena();
    const taken = Array.from({ length: 3 * 40 }, () => arena.take(1500));
    const slabs = [...new Set(taken.map((b) => b.buffer))];
    expect(slabs.length).toBeGreaterThan(1);
    arena.recycle();
    const again = arena.take(1500);
    expect(again.buffer).toBe(taken[0].buffer);
    expect(again.byteOffset).toBe(0);
    // The reuse goes on slab by slab, in the same order.
    const more = Array.from({ length: 3 * 40 - 1 }, () => arena.take(1500));
    expect([...new Set([again, ...more].map((b) => b.buffer))]).toEqual(slabs);
  });

  test(`recycle() keeps ${ARENA_KEPT_SLABS} slabs; a longer burst gets fresh ones, not a slab still carved`, () => {
    const arena = new PacketArena();
    const perSlab = Math.floor(ARENA_SLAB_BYTES / 1504);
    const burst = (): ArrayBufferLike[] => [...new Set(Array.from({ length: (ARENA_KEPT_SLABS + 2) * perSlab }, () => arena.take(1500).buffer))];
    const first = burst();
    expect(first).toHaveLength(ARENA_KEPT_SLABS + 2);
    arena.recycle();
    const second = burst();
    expect(second.slice(0, ARENA_KEPT_SLABS)).toEqual(first.slice(0, ARENA_KEPT_SLABS));
    for (const b of second.slice(ARENA_KEPT_SLABS)) expect(first).not.toContain(b);
  });

  test('zero bytes (a keepalive opened) from a fresh and from a recycled arena', () => {
    const arena = new PacketArena();
    expect(arena.take(0)).toHaveLength(0);
    arena.take(100);
    arena.recycle();
    expect(arena.take(0)).toHaveLength(0);
  });

  test('recycle() before anything was taken, or twice, changes nothing', () => {
    const arena = new PacketArena();
    arena.recycle();
    const a = arena.take(100);
    arena.recycle();
    arena.recycle();
    const b = arena.take(100);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(0);
  });
});
