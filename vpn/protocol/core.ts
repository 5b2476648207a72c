// The device's state as its send, receive and timer paths share it
// (wireguard-go's Device struct): the static identity, the peers, the index
// table, the cookie checker and load, the counters and the output of the
// call in progress. The public surface is WgDevice (device.ts); this file
// holds the small state transitions the paths have in common.
import { Counters, WakeQueue } from '../../netstack';
import { PacketArena } from '../../netstack/wire';
import { REKEY_TIMEOUT_JITTER_MAX, UNDER_LOAD_AFTER_TIME } from './constants';
import { CookieChecker } from './cookie';
import { wipe, type PublicKey } from './crypto';
import { endpointEquals, type Endpoint } from './endpoint';
import { IndexTable } from './index_table';
import { Keypair } from './keypair';
import { deriveSessionKeys, type Handshake, type StaticIdentity } from './noise';
import { DeviceOutput, type DeviceEvent } from './output';
import type { WgPeer } from './peer';
import { HandshakeRateLimiter } from './ratelimit';

export interface CoreOptions {
  identity: StaticIdentity;
  random: (n: number) => Buffer;
  wallClock: () => number;
  loadThreshold: number;
  acceptEndpoint: (e: Endpoint) => boolean;
}

export class DeviceCore<T> {
  readonly identity: StaticIdentity;
  readonly publicKey: PublicKey;
  readonly cookieChecker: CookieChecker;
  /** Handshake messages per source while under load. */
  readonly handshakeLimiter = new HandshakeRateLimiter();
  readonly indexes: IndexTable<T>;
  readonly peersByKey = new Map<string, WgPeer<T>>();
  /** Peers by their earliest timer deadline (§6), so tick() visits only the due ones. */
  readonly wakes = new WakeQueue<WgPeer<T>>();
  readonly counters = new Counters();
  readonly out = new DeviceOutput<T>();
  /** Where transport messages are opened (WgDevice.recyclePackets). */
  readonly opened = new PacketArena();
  readonly random: (n: number) => Buffer;
  /** Wall clock in ms since the epoch, for TAI64N timestamps only (§5.4.2). */
  readonly wallClock: () => number;
  private readonly loadThreshold: number;
  private readonly acceptEndpoint: (e: Endpoint) => boolean;
  private loadWindowStart = -Infinity;
  private loadWindowCount = 0;
  private underLoadUntil = -Infinity;
  forcedUnderLoad = false;
  // Timer jitter needs no secrecy (wireguard-go uses fastrandn): a CSPRNG call
  // here cost ~7% of CPU when many flows send at once.
  readonly jitter = (): number => Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX);
  /**
   * Bound once, told every deadline a peer's timers set: the queue holds the
   * peer no later than that (an earlier entry stays; tick() requeues exactly).
   */
  readonly wake = (peer: WgPeer<T>, at: number): void => {
    if (at < peer.wakeAt) this.wakes.schedule(peer, at);
  };
  /** Bound once: consumeInitiation's peer lookup by decrypted static key. */
  readonly lookupHandshake = (staticKey: Buffer): Handshake | undefined =>
    this.peersByKey.get(staticKey.toString('base64'))?.handshake;

  constructor(opts: CoreOptions) {
    this.identity = opts.identity;
    this.publicKey = opts.identity.publicKey;
    this.random = opts.random;
    this.wallClock = opts.wallClock;
    this.loadThreshold = opts.loadThreshold;
    this.acceptEndpoint = opts.acceptEndpoint;
    this.cookieChecker = new CookieChecker(this.publicKey, this.random);
    this.indexes = new IndexTable<T>(this.random);
  }

  count(reason: string): void {
    this.counters.inc(reason);
  }

  drop(reason: string, peer?: WgPeer<T>): void {
    this.count(reason);
    this.out.events.push({ type: 'drop', reason, peer });
  }

  emit(e: DeviceEvent<T>): void {
    this.count(e.type);
    this.out.events.push(e);
  }

  /** Counts a handshake message towards load; true when cookies (mac2) are required (§5.3). */
  noteHandshakeAndCheckLoad(now: number): boolean {
    if (now - this.loadWindowStart >= 1000) {
      this.loadWindowStart = now;
      this.loadWindowCount = 0;
    }
    this.loadWindowCount++;
    if (this.loadWindowCount > this.loadThreshold) this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
    return this.forcedUnderLoad || now < this.underLoadUntil;
  }

  peerForHandshake(hs: Handshake): WgPeer<T> | undefined {
    return this.peersByKey.get(hs.remoteStatic.toBase64());
  }

  /** Built-in roaming (whitepaper §2.1): the source of any authenticated packet becomes the endpoint. */
  updateEndpoint(peer: WgPeer<T>, from: Endpoint): void {
    if (endpointEquals(peer.endpoint, from)) return;
    if (!this.acceptEndpoint(from)) {
      this.count('endpoint_refused');
      return;
    }
    const old = peer.endpoint;
    const to = { address: from.address, port: from.port };
    peer.endpoint = to;
    this.emit({ type: 'endpoint_changed', peer, from: old, to });
  }

  /** Derives the session of a finished handshake and rotates it in (§5.4.5, §6.2). */
  beginSession(peer: WgPeer<T>, now: number): Keypair | null {
    const keys = deriveSessionKeys(peer.handshake);
    if (!keys) return null;
    const kp = new Keypair(keys.sendKey, keys.recvKey, keys.isInitiator, now, keys.localIndex, keys.remoteIndex);
    wipe(keys.sendKey);
    wipe(keys.recvKey);
    this.indexes.setKeypair(kp, peer);
    for (const old of peer.installKeypair(kp)) this.indexes.deleteKeypair(old);
    peer.timers.sessionDerived(now);
    return kp;
  }

  handshakeComplete(peer: WgPeer<T>, now: number): void {
    peer.timers.handshakeComplete();
    peer.lastHandshakeAt = now;
    peer.sessionUp = true;
    peer.releaseCookies(now);
    this.emit({ type: 'handshake_complete', peer });
  }

  /** §6.3: after 3 × REJECT_AFTER_TIME without a new session, erase every key of the peer. */
  zeroKeyMaterial(peer: WgPeer<T>): void {
    for (const kp of peer.takeAllKeypairs()) this.indexes.deleteKeypair(kp);
    this.indexes.releaseHandshake(peer);
    peer.handshake.clear();
  }
}
