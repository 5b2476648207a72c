// A UDP impairment relay for tests (the kernel here has no netem): listens on
// one port, forwards each datagram to a target and relays the answers back,
// with optional loss, duplication, reordering, delay and late replays.
// Run: node dist/scripts/lab/udp_relay.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT [JSON options]
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { seededRandom } from './prng';

export interface Impairment {
  /** Probability in [0,1] that a datagram is dropped. */
  loss?: number;
  /** Probability that a datagram is sent twice. */
  duplicate?: number;
  /** Probability that a datagram is held back and sent after the next one. */
  reorder?: number;
  /** Extra delay in ms for every datagram. */
  delayMs?: number;
  /** Every datagram is sent again this many ms later (a replay attack). */
  replayAfterMs?: number;
  /** Deterministic PRNG seed. */
  seed?: number;
  /** Local address the relay sends from (its "public" NAT address). */
  bindAddress?: string;
}

export function startRelay(listenHost: string, listenPort: number, targetHost: string, targetPort: number, imp: Impairment = {}): { close(): void } {
  const rand = seededRandom(imp.seed ?? 1);
  const front = createSocket(isIPv6(listenHost) ? 'udp6' : 'udp4');
  const back = createSocket(isIPv6(targetHost) ? 'udp6' : 'udp4');
  let client: RemoteInfo | null = null;
  const held: Array<{ send: () => void } | null> = [null, null];

  const impaired = (dir: 0 | 1, msg: Buffer, send: (m: Buffer) => void) => {
    if (imp.loss && rand() < imp.loss) return;
    const go = () => {
      send(msg);
      if (imp.duplicate && rand() < imp.duplicate) send(msg);
      if (imp.replayAfterMs !== undefined) setTimeout(() => send(msg), imp.replayAfterMs);
    };
    const later = (f: () => void) => (imp.delayMs ? setTimeout(f, imp.delayMs) : f());
    if (imp.reorder && held[dir] === null && rand() < imp.reorder) {
      // Held until the next datagram overtakes it, or 5 ms at most: a
      // reordering, never a silent loss at the end of a burst.
      const entry = { send: go };
      held[dir] = entry;
      setTimeout(() => {
        if (held[dir] === entry) {
          held[dir] = null;
          go();
        }
      }, 5);
      return;
    }
    later(go);
    const h = held[dir];
    if (h !== null) {
      held[dir] = null;
      later(h.send);
    }
  };

  front.on('message', (msg, rinfo) => {
    client = rinfo;
    impaired(0, msg, (m) => back.send(m, targetPort, targetHost));
  });
  back.on('message', (msg) => {
    const c = client;
    if (c !== null) impaired(1, msg, (m) => front.send(m, c.port, c.address));
  });
  front.bind(listenPort, listenHost);
  back.bind(0, imp.bindAddress);
  return {
    close() {
      front.close();
      back.close();
    },
  };
}

if (require.main === module) {
  const [lh, lp, th, tp, opts] = process.argv.slice(2);
  startRelay(lh, Number(lp), th, Number(tp), opts ? (JSON.parse(opts) as Impairment) : {});
}
