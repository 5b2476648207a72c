// The receiver index table (whitepaper §5.4.2 "I_i"; wireguard-go
// indextable.go): the random 32-bit index we put in every handshake message
// points back at the peer, and once keyed, at its keypair.
import type { Keypair } from './keypair';
import type { WgPeer } from './peer';

/** What a receiver index points at: a pending handshake (keypair null) or a keypair. */
export interface IndexEntry<T = void> {
  peer: WgPeer<T>;
  keypair: Keypair | null;
}

export class IndexTable<T> {
  private readonly entries = new Map<number, IndexEntry<T>>();

  constructor(private readonly random: (n: number) => Buffer) {}

  get size(): number {
    return this.entries.size;
  }

  get(index: number): IndexEntry<T> | undefined {
    return this.entries.get(index);
  }

  /** A fresh non-zero index, not in use, pointing at `peer` (and `keypair` once keyed). */
  allocate(peer: WgPeer<T>, keypair: Keypair | null): number {
    for (;;) {
      const idx = this.random(4).readUInt32LE(0);
      if (idx !== 0 && !this.entries.has(idx)) {
        this.entries.set(idx, { peer, keypair });
        return idx;
      }
    }
  }

  /** A keypair derived for an index allocated earlier (the handshake's, §5.4.5). */
  setKeypair(keypair: Keypair, peer: WgPeer<T>): void {
    this.entries.set(keypair.localIndex, { peer, keypair });
  }

  free(index: number): void {
    this.entries.delete(index);
  }

  /** Frees the index of a pending (not yet keyed) handshake of `peer`. */
  releaseHandshake(peer: WgPeer<T>): void {
    const idx = peer.handshake.localIndex;
    const entry = idx !== 0 ? this.entries.get(idx) : undefined;
    if (entry && entry.peer === peer && entry.keypair === null) this.entries.delete(idx);
  }

  /** Unindexes `kp` and zeroes its keys. */
  deleteKeypair(kp: Keypair): void {
    const entry = this.entries.get(kp.localIndex);
    if (entry && entry.keypair === kp) this.entries.delete(kp.localIndex);
    kp.zero();
  }
}
