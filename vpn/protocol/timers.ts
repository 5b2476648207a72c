// Per-peer timer state (whitepaper §6; wireguard-go timers.go), as deadlines
// in monotonic ms rather than OS timers: the device's tick(now) runs the due
// ones. Infinity means "not pending". Each deadline set is told to the
// device (`wake`), which keeps its peers in a queue by earliest deadline.
import {
  KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_TIMEOUT, ZERO_KEY_MATERIAL_AFTER,
} from './constants';

/** Where deadlines are told: the device, which queues `owner` (the peer) by its earliest one. */
export interface DeadlineQueue<P> {
  wake(owner: P, at: number): void;
}

export class PeerTimers<P = unknown> {
  retransmitHandshakeAt = Infinity;
  sendKeepaliveAt = Infinity;
  newHandshakeAt = Infinity;
  zeroKeyMaterialAt = Infinity;
  persistentKeepaliveAt = Infinity;
  /** Retransmissions of the current handshake attempt (§6.4). */
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;

  constructor(
    /** Persistent keepalive interval in ms; 0 = off. */
    public persistentKeepaliveInterval: number,
    private readonly jitter: () => number,
    /**
     * Told every deadline set: it must hold `owner` no later. The device and
     * the owner, rather than a closure per peer (about 100 bytes each while
     * the peer lives).
     */
    private readonly queue: DeadlineQueue<P>,
    private readonly owner: P,
  ) {}

  /** We sent data: expect something back within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, else rehandshake (§6.5). */
  dataSent(now: number): void {
    if (this.newHandshakeAt !== Infinity) return;
    this.newHandshakeAt = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter();
    this.queue.wake(this.owner, this.newHandshakeAt);
  }

  /** We received data: answer with a keepalive if we have nothing to send within KEEPALIVE_TIMEOUT (§6.5). */
  dataReceived(now: number): void {
    if (this.sendKeepaliveAt !== Infinity) {
      this.needAnotherKeepalive = true;
      return;
    }
    this.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
    this.queue.wake(this.owner, this.sendKeepaliveAt);
  }

  anyAuthenticatedPacketSent(): void {
    this.sendKeepaliveAt = Infinity;
  }

  anyAuthenticatedPacketReceived(): void {
    this.newHandshakeAt = Infinity;
  }

  anyAuthenticatedPacketTraversal(now: number): void {
    if (this.persistentKeepaliveInterval <= 0) return;
    this.persistentKeepaliveAt = now + this.persistentKeepaliveInterval;
    this.queue.wake(this.owner, this.persistentKeepaliveAt);
  }

  handshakeInitiated(now: number): void {
    this.sendKeepaliveAt = Infinity;
    this.retransmitHandshakeAt = now + REKEY_TIMEOUT + this.jitter();
    this.queue.wake(this.owner, this.retransmitHandshakeAt);
  }

  handshakeComplete(): void {
    this.retransmitHandshakeAt = Infinity;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /**
   * §6.3: erase keys if no new session is derived within 3 × REJECT_AFTER_TIME.
   * The new keypair itself expires at REJECT_AFTER_TIME (§6.1): the device
   * looks then whether the session ended.
   */
  sessionDerived(now: number): void {
    this.zeroKeyMaterialAt = now + ZERO_KEY_MATERIAL_AFTER;
    this.queue.wake(this.owner, now + REJECT_AFTER_TIME);
  }

  /** The current keypair may send no more (its counter is exhausted): the session may have ended now. */
  sendExhausted(now: number): void {
    this.queue.wake(this.owner, now);
  }

  nextDeadline(): number {
    return Math.min(
      this.retransmitHandshakeAt, this.sendKeepaliveAt, this.newHandshakeAt,
      this.zeroKeyMaterialAt, this.persistentKeepaliveAt,
    );
  }

  stopAll(): void {
    this.retransmitHandshakeAt = Infinity;
    this.sendKeepaliveAt = Infinity;
    this.newHandshakeAt = Infinity;
    this.zeroKeyMaterialAt = Infinity;
    this.persistentKeepaliveAt = Infinity;
  }
}
