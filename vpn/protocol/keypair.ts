// A transport session (whitepaper §5.4.5-§5.4.6; wireguard-go keypair.go).
import { KEY_LEN, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES_HI } from './constants';
import { counterExhausted, REPLAY_RING_BYTES, ReplayFilter } from './replay';
import { wipe } from './crypto';

const SEND_KEY = 0;
const RECV_KEY = KEY_LEN;
const RING = 2 * KEY_LEN;

export class Keypair {
  /** Next send counter, as 32-bit halves (see replay.ts for why not a bigint). */
  sendCounterHi = 0;
  sendCounterLo = 0;
  readonly sendKey: Buffer;
  readonly recvKey: Buffer;
  readonly replay: ReplayFilter;

  /**
   * Copies the two keys (the caller wipes its own): both keys and the replay
   * ring share one allocation of the keypair's own, so a session holds no
   * slice of a shared Buffer pool (see netstack/wire ownCopy) and one backing store, not three.
   */
  constructor(
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    readonly isInitiator: boolean,
    /** Monotonic ms when the handshake completed. */
    readonly createdAt: number,
    /** Our index: the receiver field of packets the peer sends with this keypair. */
    readonly localIndex: number,
    /** The peer's index: the receiver field we write. */
    readonly remoteIndex: number,
  ) {
    const memory = new ArrayBuffer(RING + REPLAY_RING_BYTES);
    this.sendKey = Buffer.from(memory, SEND_KEY, KEY_LEN);
    this.recvKey = Buffer.from(memory, RECV_KEY, KEY_LEN);
    this.sendKey.set(sendKey);
    this.recvKey.set(recvKey);
    this.replay = new ReplayFilter(new Uint32Array(memory, RING, REPLAY_RING_BYTES / 4));
  }

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
