// Per-peer state: identity, handshake, keypair rotation (whitepaper §6.2,
// wireguard-go keypair.go / peer.go), staged packets and timers. The device
// (device.ts) drives it; this file holds no I/O.
import { MAX_STAGED_PACKETS, REJECT_AFTER_TIME } from './constants';
import { CookieGenerator } from './cookie';
import { ownCopy } from '../../netstack/wire';
import { PublicKey } from './crypto';
import { Endpoint } from './endpoint';
import { Keypair } from './keypair';
import { Handshake, StaticIdentity } from './noise';
import { PeerTimers, type DeadlineQueue } from './timers';

const NOTHING_STAGED: readonly Buffer[] = Object.freeze([]);

export interface PeerSettings {
  publicKey: PublicKey;
  presharedKey?: Buffer;
  endpoint?: Endpoint;
  persistentKeepaliveSeconds?: number;
}

export class WgPeer<T = void> {
  readonly publicKey: PublicKey;
  endpoint?: Endpoint;
  /** What the wiring attached (e.g. user and device); the protocol never reads it. */
  tag: T;
  /** Why handshakes from this peer are refused (WgDevice.refusePeer), or null. */
  refused: string | null = null;
  /** Monotonic ms of the last completed handshake; undefined before the first. */
  lastHandshakeAt: number | undefined = undefined;
  /** Bytes of WireGuard messages received / sent for this peer (as `wg show` transfer). */
  rxBytes = 0;
  txBytes = 0;

  // Internal state below is public for the device and for tests; the wiring
  // should treat it as read-only.
  readonly handshake: Handshake;
  readonly timers: PeerTimers<WgPeer<T>>;
  current: Keypair | null = null;
  previous: Keypair | null = null;
  /** Responder's fresh keypair, promoted on the first packet received with it (§6.2). */
  next: Keypair | null = null;
  /** Packets waiting for a session, oldest first; null while there are none (an idle peer holds no array). */
  private stagedQueue: Buffer[] | null = null;
  lastSentHandshakeAt = -Infinity;
  /** Set on handshake completion; a session_expired event is due when no keypair is usable any more. */
  sessionUp = false;
  private cookieGenerator: CookieGenerator | null = null;

  /** The device's timer queue: the deadline this peer is queued for (Infinity: not queued), and its slot. */
  wakeAt = Infinity;
  wakeIndex = -1;

  constructor(identity: StaticIdentity, cfg: PeerSettings, tag: T, jitter: () => number, queue: DeadlineQueue<WgPeer<T>>) {
    // The handshake keeps the key in the peer's one allocation; the peer names the same object.
    this.handshake = new Handshake(identity, cfg.publicKey, cfg.presharedKey);
    this.publicKey = this.handshake.remoteStatic;
    this.endpoint = cfg.endpoint ? { address: cfg.endpoint.address, port: cfg.endpoint.port } : undefined;
    this.tag = tag;
    if (!this.handshake.precomputedStaticStatic) {
      throw new Error(`peer public key ${cfg.publicKey.toBase64()} is a low-order point; no handshake with it can succeed`);
    }
    this.timers = new PeerTimers((cfg.persistentKeepaliveSeconds ?? 0) * 1000, jitter, queue, this);
  }

  /**
   * mac1/mac2 for our handshake messages to this peer, made on the first one:
   * most configured peers are idle at any time (DESIGN.md: under 4 KB each).
   */
  get cookies(): CookieGenerator {
    return (this.cookieGenerator ??= new CookieGenerator(this.publicKey));
  }

  /** Whether a cookie generator exists now (made by the first handshake message, dropped by releaseCookies). */
  get holdsCookies(): boolean {
    return this.cookieGenerator !== null;
  }

  /**
   * The handshake completed: no cookie reply can answer it any more, so unless
   * the generator holds a cookie still fresh for our next message (§5.4.7), it
   * goes (about 330 bytes per connected peer), and the next handshake makes
   * another.
   */
  releaseCookies(now: number): void {
    const gen = this.cookieGenerator;
    if (gen === null || gen.hasFreshCookie(now)) return;
    gen.wipe();
    this.cookieGenerator = null;
  }

  /**
   * When the session_expired check is next due (§6.1): once no keypair may
   * send, the current one nor a next one still unconfirmed. Infinity when no
   * session is up.
   */
  sessionEndsAt(): number {
    if (!this.sessionUp) return Infinity;
    const { current, next } = this;
    const cur = current === null || current.sendExhausted() ? -Infinity : current.createdAt + REJECT_AFTER_TIME;
    const nxt = next === null ? -Infinity : next.createdAt + REJECT_AFTER_TIME;
    return Math.max(cur, nxt);
  }

  /** A current keypair exists that may still send (not expired, counter not exhausted). */
  hasSession(now: number): boolean {
    const kp = this.current;
    return kp !== null && !kp.isExpired(now) && !kp.sendExhausted();
  }

  get persistentKeepaliveSeconds(): number {
    return this.timers.persistentKeepaliveInterval / 1000;
  }

  set persistentKeepaliveSeconds(s: number) {
    this.timers.persistentKeepaliveInterval = Math.max(0, s) * 1000;
  }

  /** Packets waiting for a session, oldest first. */
  get staged(): readonly Buffer[] {
    return this.stagedQueue ?? NOTHING_STAGED;
  }

  /**
   * Queues a copy of `packet` (the caller may reuse its buffer); drops the
   * oldest when full. The copy has memory of its own: a slice of Node's shared
   * pool would keep 8 KB alive per packet while the handshake waits.
   */
  stage(packet: Buffer): boolean {
    return this.stageOwned(ownCopy(packet));
  }

  /** Queues `packet` itself, which nobody changes afterwards (the empty keepalive); drops the oldest when full. */
  stageOwned(packet: Buffer): boolean {
    const queue = (this.stagedQueue ??= []);
    let overflow = false;
    if (queue.length >= MAX_STAGED_PACKETS) {
      queue.shift();
      overflow = true;
    }
    queue.push(packet);
    return !overflow;
  }

  /** The oldest staged packet, taken off the queue; undefined when none. */
  takeStaged(): Buffer | undefined {
    const queue = this.stagedQueue;
    if (queue === null) return undefined;
    const packet = queue.shift();
    if (queue.length === 0) this.stagedQueue = null;
    return packet;
  }

  clearStaged(): void {
    this.stagedQueue = null;
  }

  /**
   * §6.2 rotation when a handshake completes. Returns the keypairs that are
   * no longer referenced, for the device to unindex and zero.
   */
  installKeypair(kp: Keypair): Keypair[] {
    const dropped: Keypair[] = [];
    if (kp.isInitiator) {
      // An unconfirmed "next" is better than the current as fallback for in-flight packets.
      if (this.next) {
        if (this.current) dropped.push(this.current);
        if (this.previous) dropped.push(this.previous);
        this.previous = this.next;
        this.next = null;
      } else {
        if (this.previous) dropped.push(this.previous);
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      // The responder may not send with the new keypair until the initiator
      // has used it: that is the confirmation that it derived the same keys.
      if (this.next) dropped.push(this.next);
      if (this.previous) dropped.push(this.previous);
      this.previous = null;
      this.next = kp;
    }
    return dropped;
  }

  /** First packet received with `next`: promote it. Returns the dropped keypair, or null. */
  promoteNext(): Keypair | null {
    const dropped = this.previous;
    this.previous = this.current;
    this.current = this.next;
    this.next = null;
    return dropped;
  }

  /** Every keypair of the peer, for unindexing on zeroing or removal. */
  takeAllKeypairs(): Keypair[] {
    const all = [this.current, this.previous, this.next].filter((k): k is Keypair => k !== null);
    this.current = null;
    this.previous = null;
    this.next = null;
    return all;
  }
}
