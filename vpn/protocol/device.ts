// The multi-peer WireGuard device: one static identity, many peers, one index
// table; fed datagrams and `now`, returns what it produced (DeviceOutput).
// Message handling follows wireguard-go's receive.go / send.go split into
// receive.ts (inbound) and this file (outbound, timers, peers).
import {
  DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD, KEY_LEN, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_AFTER_TIME,
  REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, UNDER_LOAD_AFTER_TIME, KEEPALIVE_TIMEOUT,
} from './constants';
import { Counters } from '../../netstack';
import { CookieChecker } from './cookie';
import { defaultRandom, PrivateKey, PublicKey } from './crypto';
import { Endpoint, endpointEquals } from './endpoint';
import { Keypair } from './keypair';
import { createInitiation, deriveSessionKeys, Handshake, StaticIdentity, tai64n } from './noise';
import { PeerConfig, WgPeer } from './peer';
import { receiveDatagram } from './receive';
import { sealTransport } from './transport';

export type DeviceEvent<T = unknown> =
  | { type: 'handshake_complete'; peer: WgPeer<T> }
  | { type: 'endpoint_changed'; peer: WgPeer<T>; from: Endpoint | undefined; to: Endpoint }
  | { type: 'session_expired'; peer: WgPeer<T> }
  | { type: 'handshake_failed'; peer: WgPeer<T> }
  | { type: 'drop'; reason: string; peer?: WgPeer<T> };

/**
 * What one call of the device produced. The device refills the same object
 * on every call (no allocation per packet), so read it before the next call.
 */
export class DeviceOutput<T = unknown> {
  /** Encrypted WireGuard messages to put on UDP: datagrams[i] goes to endpoints[i]. */
  readonly datagrams: Buffer[] = [];
  readonly endpoints: Endpoint[] = [];
  /**
   * receive() of a transport message: the decrypted inner IP packet (padding
   * removed) and the peer it came from; null otherwise, keepalives included.
   */
  packet: Buffer | null = null;
  peer: WgPeer<T> | null = null;
  readonly events: DeviceEvent<T>[] = [];

  /** @internal The device starts every call with an empty output. */
  clear(): void {
    this.datagrams.length = 0;
    this.endpoints.length = 0;
    this.packet = null;
    this.peer = null;
    this.events.length = 0;
  }

  /** @internal */
  sendDatagram(data: Buffer, to: Endpoint): void {
    this.datagrams.push(data);
    this.endpoints.push(to);
  }
}

export interface DeviceOptions {
  privateKey: PrivateKey;
  /** Wall clock in ms since the epoch, used only for TAI64N timestamps. */
  wallClock?: () => number;
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

/** What a receiver index points at: a pending handshake (keypair null) or a keypair. */
export interface IndexEntry<T = unknown> {
  peer: WgPeer<T>;
  keypair: Keypair | null;
}

const EMPTY = Buffer.alloc(0);

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

/** T: what the wiring attaches to each peer (WgPeer.tag), e.g. its user and device. */
export class WgDevice<T = unknown> {
  readonly publicKey: PublicKey;
  private readonly counterSet = new Counters();
  /** The last exception out of the protocol code (counted as 'internal_error'), for diagnosis. */
  lastInternalError: unknown = undefined;
  /** Internal: read by receive.ts. */
  readonly identity: StaticIdentity;
  readonly cookieChecker: CookieChecker;
  readonly indexTable = new Map<number, IndexEntry<T>>();
  readonly out = new DeviceOutput<T>();
  readonly random: (n: number) => Buffer;
  private readonly wallClock: () => number;
  private readonly peersByKey = new Map<string, WgPeer<T>>();
  private readonly loadThreshold: number;
  private readonly acceptEndpoint: (e: Endpoint) => boolean;
  private loadWindowStart = -Infinity;
  private loadWindowCount = 0;
  private underLoadUntil = -Infinity;
  private forcedUnderLoad = false;
  // Timer jitter needs no secrecy (wireguard-go uses fastrandn): a CSPRNG call
  // here cost ~7% of CPU when many flows send at once.
  private readonly jitter = (): number => Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX);
  /** Bound once: consumeInitiation's peer lookup by decrypted static key. */
  readonly lookupHandshake = (staticKey: Buffer): Handshake | undefined =>
    this.peersByKey.get(staticKey.toString('base64'))?.handshake;

  constructor(opts: DeviceOptions) {
    this.publicKey = opts.privateKey.publicKey();
    this.identity = { privateKey: opts.privateKey, publicKey: this.publicKey };
    this.random = opts.random ?? defaultRandom;
    this.wallClock = opts.wallClock ?? Date.now;
    this.loadThreshold = opts.handshakesPerSecondUnderLoad ?? DEFAULT_HANDSHAKES_PER_SECOND_UNDER_LOAD;
    this.acceptEndpoint = opts.acceptEndpoint ?? (() => true);
    this.cookieChecker = new CookieChecker(this.publicKey, this.random);
  }

  addPeer(cfg: PeerConfig<T>): WgPeer<T> {
    const key = cfg.publicKey.toBase64();
    if (this.peersByKey.has(key)) throw new Error(`peer ${key} is already configured on this device`);
    if (cfg.publicKey.equals(this.publicKey)) throw new Error(`peer ${key} is this device's own public key`);
    const peer = new WgPeer<T>(this.identity, cfg, this.jitter);
    this.peersByKey.set(key, peer);
    return peer;
  }

  removePeer(publicKey: PublicKey): void {
    const peer = this.peersByKey.get(publicKey.toBase64());
    if (!peer) return;
    this.zeroKeyMaterial(peer);
    peer.handshake.destroy();
    peer.timers.stopAll();
    peer.staged.length = 0;
    this.peersByKey.delete(publicKey.toBase64());
  }

  /**
   * Keeps `peer` known but refuses it from now on: its sessions end and their
   * keys are zeroed at once, and its handshake initiations are dropped and
   * counted as `handshake_refused_<reason>` (e.g. a disabled user), so a
   * refusal stays attributable to the peer rather than an "unknown_peer".
   */
  refusePeer(peer: WgPeer<T>, reason: string): void {
    peer.refused = reason;
    this.zeroKeyMaterial(peer);
    peer.timers.stopAll();
    peer.staged.length = 0;
    peer.sessionUp = false;
  }

  /** Accepts handshakes from a refused peer again; it starts without a session. */
  admitPeer(peer: WgPeer<T>): void {
    peer.refused = null;
  }

  peer(publicKey: PublicKey): WgPeer<T> | undefined {
    return this.peersByKey.get(publicKey.toBase64());
  }

  peers(): Iterable<WgPeer<T>> {
    return this.peersByKey.values();
  }

  forceUnderLoad(on: boolean): void {
    this.forcedUnderLoad = on;
  }

  /**
   * Any WireGuard message from the network. Bad input is counted by reason,
   * never thrown; throws only WireGuardCoreError, on a bug.
   */
  receive(datagram: Buffer, from: Endpoint, now: number): DeviceOutput<T> {
    this.out.clear();
    try {
      receiveDatagram<T>(this, datagram, from, now);
    } catch (err) {
      throw this.coreError('receive', err);
    }
    return this.out;
  }

  private coreError(operation: WireGuardCoreError['operation'], err: unknown): WireGuardCoreError {
    this.lastInternalError = err;
    this.count('internal_error');
    return new WireGuardCoreError(operation, err);
  }

  /**
   * Encrypts `packet` for `peer`, or stages it and starts a handshake when
   * there is no usable session. Throws only WireGuardCoreError, on a bug.
   */
  send(peer: WgPeer<T>, packet: Buffer, now: number): DeviceOutput<T> {
    this.out.clear();
    try {
      this.sendPacket(peer, packet, now);
    } catch (err) {
      throw this.coreError('send', err);
    }
    return this.out;
  }

  private sendPacket(peer: WgPeer<T>, packet: Buffer, now: number): void {
    if (peer.refused !== null) return this.count(`send_refused_${peer.refused}`);
    const kp = peer.current;
    if (peer.staged.length === 0 && kp !== null && peer.endpoint && !kp.isExpired(now) && !kp.sendExhausted()) {
      this.sendTransport(peer, kp, packet, now);
      this.keepKeyFreshSending(peer, now);
      return;
    }
    if (!peer.hasSession(now)) this.count('no_session'); // staged until a handshake completes
    if (!peer.stage(packet)) this.count('staged_overflow');
    this.sendStagedPackets(peer, now);
  }

  initiateHandshake(peer: WgPeer<T>, now: number): DeviceOutput<T> {
    this.out.clear();
    this.sendHandshakeInitiation(peer, now, false);
    return this.out;
  }

  /** Runs every due timer of every peer. Throws only WireGuardCoreError, on a bug. */
  tick(now: number): DeviceOutput<T> {
    this.out.clear();
    try {
      for (const peer of this.peersByKey.values()) this.tickPeer(peer, now);
    } catch (err) {
      throw this.coreError('tick', err);
    }
    return this.out;
  }

  /** Earliest timer deadline over all peers (Infinity when idle): when the wiring should call tick(). */
  nextTimerAt(): number {
    let next = Infinity;
    for (const peer of this.peersByKey.values()) next = Math.min(next, peer.timers.nextDeadline());
    return next;
  }

  // ---- internal, used by receive.ts ----

  get counters(): Record<string, number> {
    return this.counterSet.values;
  }

  count(reason: string): void {
    this.counterSet.inc(reason);
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

  allocateIndex(peer: WgPeer<T>, keypair: Keypair | null): number {
    for (;;) {
      const idx = this.random(4).readUInt32LE(0);
      if (idx !== 0 && !this.indexTable.has(idx)) {
        this.indexTable.set(idx, { peer, keypair });
        return idx;
      }
    }
  }

  /** Frees the index of a pending (not yet keyed) handshake of `peer`. */
  releaseHandshakeIndex(peer: WgPeer<T>): void {
    const idx = peer.handshake.localIndex;
    const entry = idx !== 0 ? this.indexTable.get(idx) : undefined;
    if (entry && entry.peer === peer && entry.keypair === null) this.indexTable.delete(idx);
  }

  /** Derives the session of a finished handshake and rotates it in (§5.4.5, §6.2). */
  beginSession(peer: WgPeer<T>, now: number): Keypair | null {
    const keys = deriveSessionKeys(peer.handshake);
    if (!keys) return null;
    const kp = new Keypair(keys.sendKey, keys.recvKey, keys.isInitiator, now, keys.localIndex, keys.remoteIndex);
    this.indexTable.set(kp.localIndex, { peer, keypair: kp });
    for (const old of peer.installKeypair(kp)) this.deleteKeypair(old);
    peer.timers.sessionDerived(now);
    return kp;
  }

  deleteKeypair(kp: Keypair): void {
    const entry = this.indexTable.get(kp.localIndex);
    if (entry && entry.keypair === kp) this.indexTable.delete(kp.localIndex);
    kp.zero();
  }

  handshakeComplete(peer: WgPeer<T>, now: number): void {
    peer.timers.handshakeComplete();
    peer.lastHandshakeAt = now;
    peer.sessionUp = true;
    this.emit({ type: 'handshake_complete', peer });
  }

  sendTransport(peer: WgPeer<T>, kp: Keypair, packet: Buffer, now: number): void {
    const msg = sealTransport(kp, packet);
    peer.txBytes += msg.length;
    const t = peer.timers;
    t.anyAuthenticatedPacketTraversal(now);
    t.anyAuthenticatedPacketSent();
    if (packet.length !== 0) t.dataSent(now);
    this.out.sendDatagram(msg, peer.endpoint as Endpoint);
  }

  /** wireguard-go SendStagedPackets: flush the queue with the current keypair, or handshake for one. */
  sendStagedPackets(peer: WgPeer<T>, now: number): void {
    const kp = peer.current;
    while (peer.staged.length > 0) {
      if (kp === null || kp.isExpired(now) || kp.sendExhausted() || !peer.endpoint) {
        this.sendHandshakeInitiation(peer, now, false);
        return;
      }
      this.sendTransport(peer, kp, peer.staged.shift() as Buffer, now);
    }
    this.keepKeyFreshSending(peer, now);
  }

  /** A keepalive is an empty transport message; it also flushes staged packets (wireguard-go SendKeepalive). */
  sendKeepalive(peer: WgPeer<T>, now: number): void {
    if (peer.staged.length === 0) {
      peer.staged.push(EMPTY);
      this.count('keepalive_sent');
    }
    this.sendStagedPackets(peer, now);
  }

  /** §6.2: the initiator rekeys after REKEY_AFTER_TIME; either side after REKEY_AFTER_MESSAGES. */
  keepKeyFreshSending(peer: WgPeer<T>, now: number): void {
    const kp = peer.current;
    if (kp && (kp.sendPastRekeyLimit() || (kp.isInitiator && now - kp.createdAt >= REKEY_AFTER_TIME))) {
      this.sendHandshakeInitiation(peer, now, false);
    }
  }

  /** §6.2: an initiator receiving on a keypair close to REJECT_AFTER_TIME rekeys before it dies. */
  keepKeyFreshReceiving(peer: WgPeer<T>, now: number): void {
    const kp = peer.current;
    if (peer.timers.sentLastMinuteHandshake || !kp || !kp.isInitiator) return;
    if (now - kp.createdAt >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      peer.timers.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(peer, now, false);
    }
  }

  sendHandshakeInitiation(peer: WgPeer<T>, now: number, isRetry: boolean): void {
    if (peer.refused !== null) return;
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    // §6.4: at most one initiation per REKEY_TIMEOUT.
    if (now - peer.lastSentHandshakeAt < REKEY_TIMEOUT) return;
    if (!peer.endpoint) {
      this.drop('no_endpoint', peer);
      return;
    }
    peer.lastSentHandshakeAt = now;
    this.releaseHandshakeIndex(peer);
    const idx = this.allocateIndex(peer, null);
    const ephemeral = Buffer.from(this.random(KEY_LEN));
    const msg = createInitiation(this.identity, peer.handshake, idx, ephemeral, tai64n(this.wallClock()));
    if (typeof msg === 'string') {
      this.indexTable.delete(idx);
      this.drop(msg, peer);
      return;
    }
    peer.cookies.addMacs(msg, now);
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketSent();
    peer.timers.handshakeInitiated(now);
    peer.txBytes += msg.length;
    this.count('handshake_initiation_sent');
    this.out.sendDatagram(msg, peer.endpoint);
  }

  private tickPeer(peer: WgPeer<T>, now: number): void {
    const t = peer.timers;
    if (t.retransmitHandshakeAt <= now) {
      t.retransmitHandshakeAt = Infinity;
      if (t.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
        // §6.4: give up after REKEY_ATTEMPT_TIME; staged packets go with it.
        t.sendKeepaliveAt = Infinity;
        peer.staged.length = 0;
        if (t.zeroKeyMaterialAt === Infinity) t.zeroKeyMaterialAt = now + 3 * REJECT_AFTER_TIME;
        this.emit({ type: 'handshake_failed', peer });
      } else {
        t.handshakeAttempts++;
        this.sendHandshakeInitiation(peer, now, true);
      }
    }
    if (t.sendKeepaliveAt <= now) {
      t.sendKeepaliveAt = Infinity;
      this.sendKeepalive(peer, now);
      if (t.needAnotherKeepalive) {
        t.needAnotherKeepalive = false;
        t.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
      }
    }
    if (t.newHandshakeAt <= now) {
      // §6.5: we sent data and heard nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
      t.newHandshakeAt = Infinity;
      this.sendHandshakeInitiation(peer, now, false);
    }
    if (t.zeroKeyMaterialAt <= now) {
      t.zeroKeyMaterialAt = Infinity;
      this.zeroKeyMaterial(peer);
    }
    if (t.persistentKeepaliveAt <= now) {
      t.persistentKeepaliveAt = Infinity;
      if (t.persistentKeepaliveInterval > 0) this.sendKeepalive(peer, now);
    }
    if (peer.sessionUp && !peer.hasSession(now) && !(peer.next && !peer.next.isExpired(now))) {
      peer.sessionUp = false;
      this.emit({ type: 'session_expired', peer });
    }
  }

  /** §6.3: after 3 × REJECT_AFTER_TIME without a new session, erase every key of the peer. */
  private zeroKeyMaterial(peer: WgPeer<T>): void {
    for (const kp of peer.takeAllKeypairs()) this.deleteKeypair(kp);
    this.releaseHandshakeIndex(peer);
    peer.handshake.clear();
  }
}
