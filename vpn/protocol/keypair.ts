// A transport session (whitepaper §5.4.5-§5.4.6; wireguard-go keypair.go).
import { REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES_HI } from './constants';
import { counterExhausted, ReplayFilter } from './replay';
import { wipe } from './crypto';

export class Keypair {
  /** Next send counter, as 32-bit halves (see replay.ts for why not a bigint). */
  sendCounterHi = 0;
  sendCounterLo = 0;
  readonly replay = new ReplayFilter();

  constructor(
    readonly sendKey: Buffer,
    readonly recvKey: Buffer,
    readonly isInitiator: boolean,
    /** Monotonic ms when the handshake completed. */
    readonly createdAt: number,
    /** Our index: the receiver field of packets the peer sends with this keypair. */
    readonly localIndex: number,
    /** The peer's index: the receiver field we write. */
    readonly remoteIndex: number,
  ) {}

  /** §6.1: no message is sent or accepted with a keypair older than REJECT_AFTER_TIME. */
  isExpired(now: number): boolean {
    return now - this.createdAt >= REJECT_AFTER_TIME;
  }

  /** The send counter reached REJECT_AFTER_MESSAGES: this keypair may not send again. */
  sendExhausted(): boolean {
    return counterExhausted(this.sendCounterHi, this.sendCounterLo);
  }

  /** The send counter passed REKEY_AFTER_MESSAGES (2^60 = hi 2^28, lo 0). */
  sendPastRekeyLimit(): boolean {
    return this.sendCounterHi > REKEY_AFTER_MESSAGES_HI
      || (this.sendCounterHi === REKEY_AFTER_MESSAGES_HI && this.sendCounterLo > 0);
  }

  advanceSendCounter(): void {
    if (this.sendCounterLo === 0xffffffff) {
      this.sendCounterLo = 0;
      this.sendCounterHi += 1;
    } else {
      this.sendCounterLo += 1;
    }
  }

  /** Sets the next send counter (tests exercise exhaustion without sending 2^64 packets). */
  setSendCounter(counter: bigint): void {
    this.sendCounterHi = Number((counter >> 32n) & 0xffffffffn);
    this.sendCounterLo = Number(counter & 0xffffffffn);
  }

  get sendCounter(): bigint {
    return (BigInt(this.sendCounterHi) << 32n) | BigInt(this.sendCounterLo);
  }

  zero(): void {
    wipe(this.sendKey);
    wipe(this.recvKey);
  }
}
