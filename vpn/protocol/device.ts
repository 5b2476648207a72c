// The multi-peer WireGuard device: one static identity, many peers, one index
// table; fed datagrams and `now`, returns what it produced (DeviceOutput).
// This is the public surface; the work is split by concern as in
// wireguard-go: the shared state (core.ts), send.ts, receive.ts, the timer
// handlers (timer_expiry.ts), the handshake (noise.ts), cookies (cookie.ts)
// and keypairs (keypair.ts).
import { DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD } from './constants';
import { DeviceCore } from './core';
import { defaultRandom, PrivateKey, PublicKey } from './crypto';
import type { Endpoint } from './endpoint';
import type { DeviceOutput } from './output';
import { WgPeer, type PeerSettings } from './peer';
import { receiveDatagram } from './receive';
import { sendHandshakeInitiation, sendPacket } from './send';
import { runExpiredTimers } from './timer_expiry';

export interface DeviceOptions {
  privateKey: PrivateKey;
  /**
   * Wall clock in ms since the epoch, for TAI64N timestamps only (§5.4.2):
   * the one clock the core cannot be passed as `now` (monotonic), so the
   * wiring hands it over (Date.now; tests a fake one).
   */
  wallClock: () => number;
  random?: (n: number) => Buffer;
  /** Handshake messages per second above which mac2 (cookies) is required. */
  handshakesPerSecondUnderLoad?: number;
  /**
   * Whether roaming may move a peer to this source. The wiring refuses the
   * concentrator's own and loopback addresses (a packet loop); the core stays
   * free of OS calls and accepts every source by default.
   */
  acceptEndpoint?: (e: Endpoint) => boolean;
}

/**
 * An exception out of the protocol code: never bad input (a counted drop), so
 * a bug that leaves keys, indices and timers in doubt. The process must exit
 * and be restarted, never carry on. Layers the device delivers to (the stack)
 * contain their own failures and never throw into it.
 */
export class WireGuardCoreError extends Error {
  constructor(
    readonly operation: 'receive' | 'send' | 'tick',
    readonly fault: unknown,
  ) {
    super(`WireGuard core failed in ${operation}: ${fault instanceof Error ? fault.message : String(fault)}`, { cause: fault });
    this.name = 'WireGuardCoreError';
  }
}

/** T: what the wiring attaches to each peer (WgPeer.tag), e.g. its user and device; none by default. */
export class WgDevice<T = void> {
  /** The last exception out of the protocol code (counted as 'internal_error'), for diagnosis. */
  lastInternalError: unknown = undefined;
  private readonly core: DeviceCore<T>;
  /** tick()'s scratch list of due peers. */
  private readonly due: WgPeer<T>[] = [];

  constructor(opts: DeviceOptions) {
    const publicKey = opts.privateKey.publicKey();
    this.core = new DeviceCore<T>({
      identity: { privateKey: opts.privateKey, publicKey },
      random: opts.random ?? defaultRandom,
      wallClock: opts.wallClock,
      loadThreshold: opts.handshakesPerSecondUnderLoad ?? DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD,
      acceptEndpoint: opts.acceptEndpoint ?? (() => true),
    });
  }

  get publicKey(): PublicKey {
    return this.core.publicKey;
  }

  get counters(): Record<string, number> {
    return this.core.counters.values;
  }

  /** Receiver indices in use, each a pending handshake or a keypair (for diagnosis). */
  get indexCount(): number {
    return this.core.indexes.size;
  }

  /** `tag`: what the wiring attaches to the peer (omitted when T is void). */
  addPeer(cfg: PeerSettings, tag: T): WgPeer<T> {
    const key = cfg.publicKey.toBase64();
    const { peersByKey } = this.core;
    if (peersByKey.has(key)) throw new Error(`peer ${key} is already configured on this device`);
    if (cfg.publicKey.equals(this.core.publicKey)) throw new Error(`peer ${key} is this device's own public key`);
    const peer = new WgPeer<T>(this.core.identity, cfg, tag, this.core.jitter, this.core);
    peersByKey.set(key, peer);
    return peer;
  }

  removePeer(publicKey: PublicKey): void {
    const peer = this.core.peersByKey.get(publicKey.toBase64());
    if (!peer) return;
    this.core.zeroKeyMaterial(peer);
    peer.handshake.destroy();
    peer.timers.stopAll();
    this.core.wakes.cancel(peer);
    peer.clearStaged();
    this.core.peersByKey.delete(publicKey.toBase64());
  }

  /**
   * Keeps `peer` known but refuses it from now on: its sessions end and their
   * keys are zeroed at once, and its handshake initiations are dropped and
   * counted as `handshake_refused_<reason>` (e.g. a disabled user), so a
   * refusal stays attributable to the peer rather than an "unknown_peer".
   */
  refusePeer(peer: WgPeer<T>, reason: string): void {
    peer.refused = reason;
    this.core.zeroKeyMaterial(peer);
    peer.timers.stopAll();
    this.core.wakes.cancel(peer);
    peer.clearStaged();
    peer.sessionUp = false;
  }

  /** Accepts handshakes from a refused peer again; it starts without a session. */
  admitPeer(peer: WgPeer<T>): void {
    peer.refused = null;
  }

  peer(publicKey: PublicKey): WgPeer<T> | undefined {
    return this.core.peersByKey.get(publicKey.toBase64());
  }

  peers(): Iterable<WgPeer<T>> {
    return this.core.peersByKey.values();
  }

  forceUnderLoad(on: boolean): void {
    this.core.forcedUnderLoad = on;
  }

  /**
   * Any WireGuard message from the network. Bad input is counted by reason,
   * never thrown; throws only WireGuardCoreError, on a bug.
   */
  receive(datagram: Buffer, from: Endpoint, now: number): DeviceOutput<T> {
    const { core } = this;
    core.out.clear();
    try {
      receiveDatagram<T>(core, datagram, from, now);
    } catch (err) {
      throw this.coreError('receive', err);
    }
    return this.done();
  }

  /**
   * Every packet receive() returned so far has been read and let go (each
   * taker copied what it keeps): the next ones are opened into the same memory
   * (PacketArena.recycle). Without the call nothing is reused.
   */
  recyclePackets(): void {
    this.core.opened.recycle();
  }

  /**
   * Encrypts `packet` for `peer`, or stages it and starts a handshake when
   * there is no usable session. Throws only WireGuardCoreError, on a bug.
   */
  send(peer: WgPeer<T>, packet: Buffer, now: number): DeviceOutput<T> {
    const { core } = this;
    core.out.clear();
    try {
      sendPacket(core, peer, packet, now);
    } catch (err) {
      throw this.coreError('send', err);
    }
    return this.done();
  }

  initiateHandshake(peer: WgPeer<T>, now: number): DeviceOutput<T> {
    this.core.out.clear();
    sendHandshakeInitiation(this.core, peer, now, false);
    return this.done();
  }

  /** Runs every due timer of the peers whose deadline came. Throws only WireGuardCoreError, on a bug. */
  tick(now: number): DeviceOutput<T> {
    const { core, due } = this;
    core.out.clear();
    try {
      // Taken out first: a peer requeued at or before `now` waits for the next tick, never loops here.
      for (let p = core.wakes.popDue(now); p !== null; p = core.wakes.popDue(now)) due.push(p);
      for (const peer of due) {
        runExpiredTimers(core, peer, now);
        const at = Math.min(peer.timers.nextDeadline(), peer.sessionEndsAt());
        if (at !== Infinity) core.wakes.schedule(peer, at);
      }
    } catch (err) {
      throw this.coreError('tick', err);
    } finally {
      due.length = 0;
    }
    return this.done();
  }

  /**
   * When the wiring should call tick() (Infinity when idle): the earliest
   * deadline of any peer, or a little earlier when a deadline was cancelled
   * since (tick() then finds nothing due and requeues the peer).
   */
  nextTimerAt(): number {
    return this.core.wakes.peekTime() ?? Infinity;
  }

  private done(): DeviceOutput<T> {
    const { out } = this.core;
    out.wakeAt = this.nextTimerAt();
    return out;
  }

  private coreError(operation: WireGuardCoreError['operation'], err: unknown): WireGuardCoreError {
    this.lastInternalError = err;
    this.core.count('internal_error');
    return new WireGuardCoreError(operation, err);
  }
}
